/*!
The daemon against a real kube-apiserver v1.28 (`tests/util/real_api.rs`): our RBAC, watch
semantics, Leases and Events, the manifests, and every fix command run with the real kubectl.
Skipped, with one line saying why, when the binaries are not there (see README, Tests).
*/

mod fixes;
mod install;
mod lease;
mod manifests;
mod nodes;
mod rbac;
mod stage;
mod watch;

#[test]
fn the_cluster_starts_and_answers_as_the_admin() {
    let Some(c) = crate::util::real_api::shared() else {
        return;
    };
    let v = c.get("/version");
    assert_eq!(v["gitVersion"], "v1.28.7", "{v}");
    let s = stage::Stage::new(c, "smoke");
    let node = s.node();
    let (_, rs) = s.deployment("web", 1, &[stage::ctr("app", "nginx:1.25")]);
    let mut p = s.pod(
        Some(&rs),
        &format!("{}-abcde", rs.name),
        &[stage::ctr("app", "nginx:1.25")],
    );
    s.bind(&mut p, &node);
    s.status(
        &p,
        stage::pod_status(
            &p,
            &s.ns,
            &[stage::State::CrashLoop {
                restarts: 5,
                exit: 1,
                reason: "Error",
            }],
        ),
    );
    let got = c.get(&format!("/api/v1/namespaces/{}/pods/{}", s.ns, p.name));
    assert_eq!(got["spec"]["nodeName"], node.as_str());
    assert_eq!(
        got["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
}
