/*!
Which workload a pod belongs to, from its controller ownerReference alone,
with no extra API calls: an incident is about a workload, not a pod.

- A ReplicaSet named `<deployment>-<pod-template-hash>` belongs to that
  Deployment (the hash is what the Deployment controller appends).
- StatefulSet, DaemonSet, Job and others are the workload themselves.
- A Job named `<cronjob>-<digits>` belongs to that CronJob (the CronJob
  controller names Jobs after the scheduled minute).
- A pod with no owner is its own workload.
*/

use crate::model::PodRecord;
use crate::model::Workload;

/// Characters Kubernetes uses for generated suffixes (`rand.SafeEncodeString`):
/// no vowels, no 0/1/3, so they never spell words.
fn is_safe_encoded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c))
}

pub fn workload_of(pod: &PodRecord) -> Workload {
    let Some(owner) = &pod.owner else {
        return Workload {
            kind: "Pod".into(),
            name: pod.name.to_string(),
        };
    };
    let (kind, name) = (&*owner.kind, &*owner.name);
    match kind {
        "ReplicaSet" => match name.rsplit_once('-') {
            Some((deploy, _)) if revision_of(pod).is_some() => Workload {
                kind: "Deployment".into(),
                name: deploy.into(),
            },
            _ => Workload {
                kind: "ReplicaSet".into(),
                name: name.into(),
            },
        },
        "Job" => match name.rsplit_once('-') {
            // CronJob-created Jobs end in the scheduled time in minutes.
            Some((cron, stamp))
                if !cron.is_empty()
                    && stamp.len() >= 8
                    && stamp.bytes().all(|c| c.is_ascii_digit()) =>
            {
                Workload {
                    kind: "CronJob".into(),
                    name: cron.into(),
                }
            }
            _ => Workload {
                kind: "Job".into(),
                name: name.into(),
            },
        },
        _ => Workload {
            kind: kind.into(),
            name: name.into(),
        },
    }
}

/// The revision a Deployment's pod belongs to: its ReplicaSet
/// (`web-7d4b9c6f8`). Failures of two revisions (a rollout next to the old
/// ReplicaSet) are two problems. `None` for every other owner.
pub fn revision_of(pod: &PodRecord) -> Option<&str> {
    let owner = pod.owner.as_ref()?;
    if &*owner.kind != "ReplicaSet" {
        return None;
    }
    // pod-template-hash is 1–10 safe-encoded characters.
    let (deploy, hash) = owner.name.rsplit_once('-')?;
    (!deploy.is_empty() && hash.len() <= 10 && is_safe_encoded(hash)).then_some(&*owner.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Owner, Phase};

    fn pod_owned_by(kind: &str, name: &str) -> PodRecord {
        let mut p = PodRecord::bare("ns", "the-pod", Phase::Running);
        p.owner = (!kind.is_empty()).then(|| Owner {
            kind: kind.into(),
            name: name.into(),
        });
        p
    }

    fn w(kind: &str, name: &str) -> Workload {
        workload_of(&pod_owned_by(kind, name))
    }

    #[test]
    fn replicasets_with_a_template_hash_belong_to_their_deployment() {
        assert_eq!(
            w("ReplicaSet", "orders-api-7d4b9c6f8"),
            Workload {
                kind: "Deployment".into(),
                name: "orders-api".into()
            }
        );
        assert_eq!(
            w("ReplicaSet", "web-5b7c9"),
            Workload {
                kind: "Deployment".into(),
                name: "web".into()
            }
        );
        // A hand-made ReplicaSet whose suffix is a word is its own workload.
        assert_eq!(
            w("ReplicaSet", "frontend-canary"),
            Workload {
                kind: "ReplicaSet".into(),
                name: "frontend-canary".into()
            }
        );
        assert_eq!(
            w("ReplicaSet", "single"),
            Workload {
                kind: "ReplicaSet".into(),
                name: "single".into()
            }
        );
    }

    #[test]
    fn cronjob_jobs_belong_to_their_cronjob_and_other_jobs_to_themselves() {
        assert_eq!(
            w("Job", "nightly-backup-29012345"),
            Workload {
                kind: "CronJob".into(),
                name: "nightly-backup".into()
            }
        );
        assert_eq!(
            w("Job", "migrate-v2"),
            Workload {
                kind: "Job".into(),
                name: "migrate-v2".into()
            }
        );
    }

    #[test]
    fn statefulsets_daemonsets_and_bare_pods() {
        assert_eq!(
            w("StatefulSet", "db"),
            Workload {
                kind: "StatefulSet".into(),
                name: "db".into()
            }
        );
        assert_eq!(
            w("DaemonSet", "node-exporter"),
            Workload {
                kind: "DaemonSet".into(),
                name: "node-exporter".into()
            }
        );
        assert_eq!(
            w("", ""),
            Workload {
                kind: "Pod".into(),
                name: "the-pod".into()
            }
        );
    }
}
