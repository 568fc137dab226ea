/*!
The diagnosis rules: a static table, most specific first, and the matcher
that walks it. The first rule whose every criterion holds wins; the last one
matches everything, so a diagnosis always comes back.

A rule is data, not code: which finding types or reasons it applies to, exit
codes or signals, whether the container is an init container or has a given
probe, and case-insensitive substring patterns over the finding's messages,
the events and the logs (built-in rules need no regular expressions:
alternatives and "all of these groups on one line" cover what the original's
regexes did; only user rules from `RULES_FILE` carry regex-lite patterns,
in `Rule::regexes`). Its summary, fix
and commands are templates whose `{{variables}}` are filled by `vars` with
the real names.

Order matters and follows one idea: what pins the cause down beats what only
hints at it. Evictions, deadlines and scheduling come first (the pod-level
reason is definitive), then configuration and image errors, then exit codes
that mean one thing (OOM, 127, 126, 139), then causes quoted from the crashed
run's own output (DNS, TLS, disk, ports, permissions, refused connections),
then probes (a probe failing is often the symptom of those), then generic
exits.
*/

pub use super::context::{Context, ProbeSlot};
use super::vars::{MAX_QUOTE, Vars, cap, fill, fill_all};
use crate::model::FailureType;
pub use crate::model::diagnosis::{Cause, Diagnosis, Fix};
use crate::model::{ContainerRecord, ContainerState, Rollout};

use FailureType as F;

/// What a rule requires of the exit code (and signal).
#[derive(Clone, Copy, Debug)]
pub enum Exit {
    Any,
    Zero,
    NonZero,
    /// One of these codes, or one of these signals.
    Codes(&'static [i32], &'static [i32]),
}

/// Where patterns are looked for (bit set).
pub const MSG: u8 = 1;
pub const EVT: u8 = 2;
pub const LOG: u8 = 4;

#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub cause: Cause,
    /// Applies to these finding types or these reasons (both empty: any).
    pub kinds: &'static [FailureType],
    pub reasons: &'static [&'static str],
    pub exit: Exit,
    /// Only for init containers (`Some(true)`) or only for others.
    pub init: Option<bool>,
    /// The probe the texts talk about; with `needs_probe`, the container must have it.
    pub probe: Option<ProbeSlot>,
    pub needs_probe: bool,
    /// Lowercase substrings. A line matches when each group has a hit in
    /// it; empty: no text needed.
    pub patterns: &'static [&'static [&'static str]],
    pub sources: u8,
    pub confidence: f64,
    /// The fix changes the pod template (so bare pods and Jobs get a note).
    pub mutates: bool,
    /// Extra evidence lines, dropped when a variable is unknown.
    pub facts: &'static [&'static str],
    pub summary: &'static str,
    pub fix: &'static str,
    pub commands: &'static [&'static str],
    /// Regexes of a user rule (`RULES_FILE`); built-in rules use `patterns`.
    pub regexes: Option<&'static Regexes>,
}

/// A user rule's regexes, each over one source; every one given must match.
#[derive(Debug, Default)]
pub struct Regexes {
    pub message: Option<regex_lite::Regex>,
    pub events: Option<regex_lite::Regex>,
    pub logs: Option<regex_lite::Regex>,
}

const BASE: Rule = Rule {
    id: "",
    cause: Cause::Unknown,
    kinds: &[],
    reasons: &[],
    exit: Exit::Any,
    init: None,
    probe: None,
    needs_probe: false,
    patterns: &[],
    sources: MSG | EVT | LOG,
    confidence: 0.5,
    mutates: false,
    facts: &[],
    summary: "",
    fix: "",
    commands: &[],
    regexes: None,
};

const PENDING: &[FailureType] = &[F::Unschedulable, F::PendingTooLong];

// Commands shared by several rules.
const DESCRIBE: &str = "kubectl describe pod {{pod}} -n {{ns}}";
const EVENTS: &str = "kubectl get events -n {{ns}} --field-selector involvedObject.name={{pod}} --sort-by=.lastTimestamp";
const PREVIOUS_LOGS: &str = "kubectl logs {{pod}} -n {{ns}} -c {{container}} --previous --tail=100";
/// Commands look inside a failing container with `kubectl debug {{pod}}
/// --copy-to={{pod}}-debug --container=… -- <command>` (a copy whose container
/// runs the command instead: a crashing one cannot be exec'd into), which
/// this removes again; and at the node's runtime with `kubectl debug
/// node/… -- chroot /host crictl …`. Only `kubectl`: k3s nodes have no docker.
const DEBUG_DONE: &str = "kubectl delete pod {{pod}}-debug -n {{ns}}";

/// A probe that fails by timing out: give it more time.
macro_rules! probe_timeout {
    ($slot:expr, $id:literal, $cause:expr, $pat:expr) => {
        Rule {
            id: $id,
            cause: $cause,
            probe: Some($slot),
            patterns: &[$pat, &["timeout", "deadline exceeded", "timed out"]],
            sources: MSG | EVT,
            confidence: 0.9,
            mutates: true,
            facts: &["{{probe_field}}: {{probe_desc}}"],
            summary: "The {{probe}} probe of container {{container}} ({{ref}}, namespace {{ns}}) times out after {{probe_timeout}}s: the endpoint answers too slowly, not wrongly.",
            fix: "Give the probe more time (timeoutSeconds {{probe_timeout}} → {{probe_timeout_new}}), and check why the endpoint is slow (CPU throttling, a health check that calls dependencies).",
            commands: &[
                "kubectl patch {{ref}} -n {{ns}} --type=json -p='[{\"op\":\"replace\",\"path\":\"{{cpath}}/{{probe_field}}/timeoutSeconds\",\"value\":{{probe_timeout_new}}}]'",
                "kubectl top pod {{pod}} -n {{ns}} --containers",
                EVENTS,
            ],
            ..BASE
        }
    };
}

/// A probe that fails otherwise: check it against the app, or allow more failures.
macro_rules! probe_failed {
    ($slot:expr, $id:literal, $cause:expr, $pat:expr, $summary:literal, $fix:literal $(,)?) => {
        Rule {
            id: $id,
            cause: $cause,
            probe: Some($slot),
            patterns: &[$pat],
            sources: MSG | EVT,
            confidence: 0.85,
            mutates: true,
            facts: &["{{probe_field}}: {{probe_desc}}"],
            summary: $summary,
            fix: $fix,
            commands: &[
                EVENTS,
                "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.{{probe_field}}}'",
                "kubectl patch {{ref}} -n {{ns}} --type=json -p='[{\"op\":\"replace\",\"path\":\"{{cpath}}/{{probe_field}}/failureThreshold\",\"value\":{{probe_threshold_new}}}]'",
                PREVIOUS_LOGS,
            ],
            ..BASE
        }
    };
}

/// The rules, most specific first (see the module doc for the order).
pub static RULES: &[Rule] = &[
    // ------------------------------------------------------------ evictions
    Rule {
        id: "evicted-disk-pressure",
        cause: Cause::EvictedDisk,
        kinds: &[F::Evicted],
        patterns: &[&[
            "nodefs",
            "imagefs",
            "diskpressure",
            "low on resource: storage",
        ]],
        sources: MSG,
        confidence: 0.9,
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) was evicted: node {{node}} ran low on disk.",
        fix: "The node's disk filled up (images, logs, emptyDirs), not necessarily because of this pod; the controller recreates it elsewhere. Free space on the node or give it a bigger disk, then delete the evicted pod object.",
        commands: &[
            "kubectl describe node {{node}} | grep -A8 Conditions",
            "kubectl get pods -A --field-selector spec.nodeName={{node}},status.phase=Failed",
            "kubectl delete pod {{pod}} -n {{ns}}",
        ],
        ..BASE
    },
    Rule {
        id: "evicted-ephemeral-storage",
        cause: Cause::EvictedEphemeralStorage,
        kinds: &[F::Evicted],
        patterns: &[&[
            "ephemeral-storage",
            "ephemeral local storage",
            "ephemeral storage",
        ]],
        sources: MSG,
        confidence: 0.9,
        mutates: true,
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) was evicted for its local (ephemeral) storage use: container {{container}} writes more to its filesystem, logs or emptyDir than the node allows.",
        fix: "Give {{container}} an ephemeral-storage request and limit that match what it writes, or move the data to a volume; bounded emptyDirs (sizeLimit) fail the writer instead of the node.",
        commands: &[
            "kubectl set resources {{ref}} -n {{ns}} -c {{container}} --requests=ephemeral-storage=1Gi --limits=ephemeral-storage=2Gi",
            "kubectl describe node {{node}} | grep -A8 Allocated",
        ],
        ..BASE
    },
    Rule {
        id: "evicted-memory",
        cause: Cause::EvictedMemory,
        kinds: &[F::Evicted],
        patterns: &[&["low on resource: memory", "memorypressure"]],
        sources: MSG,
        confidence: 0.9,
        mutates: true,
        facts: &[
            "memory request {{mem_request}}, limit {{mem_limit}}",
            "kubelet saw {{mem_usage}} in use",
        ],
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) was evicted: node {{node}} ran low on memory and {{container}} used more than its {{mem_request}} request.",
        fix: "The kubelet evicts pods using most above their request first. Set {{container}}'s memory request to what it really uses, so the scheduler places it on a node with room.",
        commands: &[
            "kubectl set resources {{ref}} -n {{ns}} -c {{container}} {{evict_mem_args}}",
            "kubectl top pod -n {{ns}} --containers",
            "kubectl describe node {{node}} | grep -A8 Allocated",
        ],
        ..BASE
    },
    // -------------------------------------------------------------- deadline
    Rule {
        id: "deadline-exceeded",
        cause: Cause::DeadlineExceeded,
        reasons: &["DeadlineExceeded"],
        confidence: 0.95,
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) was stopped after running about {{ran_for}}: it exceeded its activeDeadlineSeconds.",
        fix: "Raise the deadline (about {{deadline_new}}s, twice the observed run, below) or make the job faster, then run it again. The pod template's own spec.activeDeadlineSeconds, if set, limits each pod too.",
        commands: &[
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{deadline_jsonpath}}'",
            "kubectl get pod {{pod}} -n {{ns}} -o jsonpath='{.spec.activeDeadlineSeconds}'",
            "kubectl patch {{ref}} -n {{ns}} --type=json -p='[{\"op\":\"add\",\"path\":\"{{deadline_path}}\",\"value\":{{deadline_new}}}]'",
        ],
        ..BASE
    },
    // ------------------------------------------------------------ scheduling
    Rule {
        id: "unschedulable-unbound-pvc",
        cause: Cause::UnboundPvc,
        kinds: PENDING,
        patterns: &[&[
            "unbound immediate persistentvolumeclaims",
            "persistentvolumeclaim \"",
            "unbound persistentvolumeclaim",
        ]],
        sources: MSG | EVT,
        confidence: 0.9,
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) cannot be scheduled: a PersistentVolumeClaim it mounts is not bound to a volume.",
        fix: "Find the Pending claim and why it is not bound (no StorageClass, a provisioner error, no matching PersistentVolume); once it binds, the pod schedules.",
        commands: &[
            "kubectl get pvc -n {{ns}}",
            "kubectl describe pvc -n {{ns}} | grep -A5 Events",
            "kubectl get storageclass",
        ],
        ..BASE
    },
    Rule {
        id: "unschedulable-insufficient-cpu",
        cause: Cause::InsufficientCpu,
        kinds: PENDING,
        patterns: &[&["insufficient cpu"]],
        sources: MSG | EVT,
        confidence: 0.9,
        mutates: true,
        facts: &["container {{cpu_container}} requests cpu {{cpu_request}}"],
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) cannot be scheduled: no node has {{cpu_request}} CPU free for container {{cpu_container}}.",
        fix: "Lower the CPU request (halved to {{cpu_new}} below) if the container does not need it, or add nodes / a larger node pool.",
        commands: &[
            "kubectl describe nodes | grep -A5 Allocated",
            "kubectl set resources {{ref}} -n {{ns}} -c {{cpu_container}} --requests=cpu={{cpu_new}}",
        ],
        ..BASE
    },
    Rule {
        id: "unschedulable-insufficient-memory",
        cause: Cause::InsufficientMemory,
        kinds: PENDING,
        patterns: &[&["insufficient memory"]],
        sources: MSG | EVT,
        confidence: 0.9,
        mutates: true,
        facts: &["container {{memreq_container}} requests memory {{memreq_request}}"],
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) cannot be scheduled: no node has {{memreq_request}} memory free for container {{memreq_container}}.",
        fix: "Lower the memory request (halved to {{memreq_new}} below) if the container does not need it, or add nodes / a larger node pool.",
        commands: &[
            "kubectl describe nodes | grep -A5 Allocated",
            "kubectl set resources {{ref}} -n {{ns}} -c {{memreq_container}} --requests=memory={{memreq_new}}",
        ],
        ..BASE
    },
    Rule {
        id: "unschedulable-node-selector",
        cause: Cause::NodeSelectorMismatch,
        kinds: PENDING,
        patterns: &[&[
            "didn't match pod's node affinity",
            "didn't match node selector",
            "node(s) didn't match pod's node",
            "node affinity/selector",
        ]],
        sources: MSG | EVT,
        confidence: 0.85,
        mutates: true,
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) cannot be scheduled: no node matches its nodeSelector or node affinity.",
        fix: "Compare the pod's nodeSelector/affinity with the node labels: fix the selector, label a node to match, or remove the selector.",
        commands: &[
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{tpl_jp}}.nodeSelector}{\"\\n\"}{{{tpl_jp}}.affinity.nodeAffinity}'",
            "kubectl get nodes --show-labels",
            "kubectl label node <node> <key>=<value>",
            "kubectl patch {{ref}} -n {{ns}} --type=json -p='[{\"op\":\"remove\",\"path\":\"{{tpl}}/nodeSelector\"}]'",
        ],
        ..BASE
    },
    Rule {
        id: "unschedulable-untolerated-taint",
        cause: Cause::UntoleratedTaint,
        kinds: PENDING,
        patterns: &[&["untolerated taint", "had taint", "had taints"]],
        sources: MSG | EVT,
        confidence: 0.85,
        mutates: true,
        facts: &["taint {{taint}}"],
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) cannot be scheduled: the nodes with room carry the taint {{taint}}, which the pod does not tolerate.",
        fix: "If the pod belongs on those nodes, add a toleration for {{taint_key}} (the patch below sets the whole tolerations list: merge in any existing ones first); otherwise remove the taint from the nodes or add untainted capacity.",
        commands: &[
            "kubectl get nodes -o custom-columns=NAME:.metadata.name,TAINTS:.spec.taints",
            "kubectl patch {{ref}} -n {{ns}} --type=json -p='[{\"op\":\"add\",\"path\":\"{{tpl}}/tolerations\",\"value\":[{\"key\":\"{{taint_key}}\",\"operator\":\"Exists\"}]}]'",
        ],
        ..BASE
    },
    // ---------------------------------------------------------- configuration
    Rule {
        id: "missing-config-key",
        cause: Cause::MissingConfigKey,
        patterns: &[&["couldn't find key"]],
        sources: MSG | EVT,
        confidence: 0.95,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot start: key {{config_key}} is missing from {{config_kind}} {{config_name}}.",
        fix: "Add the key {{config_key}} to {{config_kind}} {{config_name}} (or fix the key name in the pod spec); the kubelet retries on its own.",
        commands: &[
            "kubectl describe {{config_kind}} {{config_name}} -n {{ns}}",
            "kubectl patch {{config_kind}} {{config_name}} -n {{ns}} --type=merge -p '{\"{{config_data}}\":{\"{{config_key}}\":\"<value>\"}}'",
        ],
        ..BASE
    },
    Rule {
        id: "missing-configmap",
        cause: Cause::MissingConfigmap,
        patterns: &[&["configmap \"", "configmaps \""], &["not found"]],
        sources: MSG | EVT,
        confidence: 0.95,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot start: ConfigMap {{configmap}} does not exist in {{ns}}.",
        fix: "Create ConfigMap {{configmap}} in {{ns}} (or fix its name in the pod spec); the kubelet retries on its own.",
        commands: &[
            "kubectl get configmaps -n {{ns}}",
            "kubectl create configmap {{configmap}} -n {{ns}} --from-literal=<key>=<value>",
        ],
        ..BASE
    },
    Rule {
        id: "missing-secret",
        cause: Cause::MissingSecret,
        patterns: &[&["secret \"", "secrets \""], &["not found"]],
        sources: MSG | EVT,
        confidence: 0.95,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot start: Secret {{secret}} does not exist in {{ns}}.",
        fix: "Create Secret {{secret}} in {{ns}} (or fix its name in the pod spec); the kubelet retries on its own.",
        commands: &[
            "kubectl get secrets -n {{ns}}",
            "kubectl create secret generic {{secret}} -n {{ns}} --from-literal=<key>=<value>",
        ],
        ..BASE
    },
    Rule {
        id: "run-as-non-root",
        cause: Cause::PermissionDenied,
        patterns: &[&["runasnonroot", "non-numeric user"]],
        sources: MSG | EVT,
        confidence: 0.9,
        mutates: true,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) is not allowed to start: runAsNonRoot is set but the image runs as root (or as a non-numeric user).",
        fix: "Run the container as a numeric non-root user (runAsUser), or build the image with a numeric USER.",
        commands: &[
            "kubectl patch {{ref}} -n {{ns}} --type=json -p='[{\"op\":\"add\",\"path\":\"{{cpath}}/securityContext/runAsUser\",\"value\":1000}]'",
        ],
        ..BASE
    },
    Rule {
        id: "volume-mount-failed",
        cause: Cause::VolumeMountFailed,
        patterns: &[&[
            "failedmount",
            "mountvolume",
            "unable to attach or mount",
            "failedattachvolume",
            "attachvolume.attach failed",
            "multi-attach error",
        ]],
        sources: MSG | EVT,
        confidence: 0.85,
        summary: "Pod {{pod}} of {{ref}} (namespace {{ns}}) is stuck: a volume cannot be attached or mounted.",
        fix: "Read the mount error in the events: a volume still attached to another node (Multi-Attach) clears when the old pod is gone; a CSI or NFS error needs the storage side fixed.",
        commands: &[
            EVENTS,
            "kubectl get pvc -n {{ns}}",
            "kubectl get volumeattachments",
        ],
        ..BASE
    },
    // ------------------------------------------------------------------ image
    Rule {
        id: "invalid-image-name",
        cause: Cause::InvalidImageName,
        kinds: &[F::InvalidImageName],
        reasons: &["InvalidImageName"],
        confidence: 0.97,
        mutates: true,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) has an invalid image reference {{image}}: {{message}}",
        fix: "Fix the image reference (lowercase repository, no spaces or stray characters, tag after a colon).",
        commands: &["kubectl set image {{ref}} -n {{ns}} {{container}}={{image_fixed}}"],
        ..BASE
    },
    Rule {
        id: "image-pull-unauthorized",
        cause: Cause::ImagePullUnauthorized,
        kinds: &[F::ImagePullBackOff],
        patterns: &[&[
            "unauthorized",
            "authentication required",
            "403 forbidden",
            "no basic auth credentials",
            "pull access denied",
            "access denied",
            "insufficient_scope",
            "denied:",
            "requested access to the resource is denied",
        ]],
        sources: MSG | EVT,
        confidence: 0.9,
        mutates: true,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot pull {{image}}: registry {{registry}} refused the credentials (or none were sent).",
        fix: "{{pull_note}} Create a docker-registry secret for {{registry}} in {{ns}} and reference it from the pod template (or from service account {{service_account}}).",
        commands: &[
            "kubectl create secret docker-registry {{pull_secret}} -n {{ns}} --docker-server={{registry}} --docker-username=<user> --docker-password=<token> --dry-run=client -o yaml | kubectl apply -f -",
            "kubectl patch {{ref}} -n {{ns}} --type=json -p='[{\"op\":\"add\",\"path\":\"{{tpl}}/imagePullSecrets\",\"value\":[{\"name\":\"{{pull_secret}}\"}]}]'",
            "kubectl patch serviceaccount {{service_account}} -n {{ns}} -p '{\"imagePullSecrets\":[{\"name\":\"{{pull_secret}}\"}]}'",
        ],
        ..BASE
    },
    Rule {
        id: "image-pull-network",
        cause: Cause::ImagePullNetwork,
        kinds: &[F::ImagePullBackOff],
        patterns: &[&[
            "i/o timeout",
            "dial tcp",
            "no such host",
            "connection refused",
            "connection reset",
            "tls handshake timeout",
            "network is unreachable",
            "context deadline exceeded",
            "server misbehaving",
            "x509:",
        ]],
        sources: MSG | EVT,
        confidence: 0.85,
        summary: "Node {{node}} cannot reach registry {{registry}} to pull {{image}} for container {{container}} ({{ref}}, namespace {{ns}}).",
        fix: "Check the node's DNS, egress (firewall, proxy, NAT) and the registry's TLS certificate; the kubelet retries the pull on its own.",
        commands: &[
            EVENTS,
            "kubectl debug node/{{node}} -it --image=busybox:1.36 -- nslookup {{registry}}",
        ],
        ..BASE
    },
    Rule {
        id: "image-not-found",
        cause: Cause::ImageNotFound,
        kinds: &[F::ImagePullBackOff],
        patterns: &[&[
            "not found",
            "manifest unknown",
            "notfound",
            "does not exist",
            "no matching manifest",
        ]],
        sources: MSG | EVT,
        confidence: 0.95,
        mutates: true,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot pull {{image}}: the tag (or the repository) does not exist in {{registry}}.",
        fix: "Check which tags exist, then point the container at one (only the new tag is a placeholder below).",
        commands: &[
            EVENTS,
            "kubectl debug node/{{node}} -it --image=busybox:1.36 -- chroot /host crictl pull {{image}}",
            "kubectl set image {{ref}} -n {{ns}} {{container}}={{image_repo}}:<existing-tag>",
        ],
        ..BASE
    },
    Rule {
        id: "image-pull-backoff",
        cause: Cause::ImageNotFound,
        kinds: &[F::ImagePullBackOff],
        confidence: 0.5,
        mutates: true,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot pull {{image}}; the registry's own error is only in the events (most often a missing tag, else missing pull credentials for {{registry}}).",
        fix: "Read the Failed event for the registry's answer, check the tag exists, and if {{registry}} is private set up imagePullSecrets. {{pull_note}}",
        commands: &[
            EVENTS,
            "kubectl debug node/{{node}} -it --image=busybox:1.36 -- chroot /host crictl pull {{image}}",
            "kubectl set image {{ref}} -n {{ns}} {{container}}={{image_repo}}:<existing-tag>",
        ],
        ..BASE
    },
    // ------------------------------------------------------------------- OOM
    // The node's SystemOOM event (enrichment reads the node's events for an
    // OOM kill): the kernel killed for the whole node, not for this
    // container's own limit, so raising the limit would not help.
    Rule {
        id: "system-oom",
        cause: Cause::SystemOom,
        kinds: &[F::OOMKilled],
        patterns: &[&["systemoom"]],
        sources: EVT,
        confidence: 0.9,
        facts: &["memory limit {{mem_limit}}, request {{mem_request}}"],
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) was killed because node {{node}} ran out of memory (a system OOM, the node's SystemOOM event), not because it used more than its own limit.",
        fix: "The node is overcommitted: the memory its pods use is more than it has. Give the pods on {{node}} memory requests close to what they really use, so the scheduler stops packing them onto one node, and reserve memory for the system (kubelet --system-reserved; k3s: --kubelet-arg=system-reserved=memory=256Mi). Raising this container's limit would not help.",
        commands: &[
            "kubectl describe node {{node}}",
            "kubectl get pods -A -o wide --field-selector spec.nodeName={{node}}",
            "kubectl top pods -A --sort-by=memory",
        ],
        ..BASE
    },
    Rule {
        id: "oomkilled-container",
        cause: Cause::OomKilled,
        kinds: &[F::OOMKilled],
        reasons: &["OOMKilled"],
        confidence: 0.97,
        mutates: true,
        facts: &["memory limit {{mem_limit}}, request {{mem_request}}"],
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) was OOM-killed (exit 137): it used more than {{mem_limit_phrase}}.",
        fix: "{{mem_fix}} Then watch its usage; if it keeps growing whatever the limit, look for a leak (or cap the runtime heap, e.g. JVM -XX:MaxRAMPercentage, Node --max-old-space-size).",
        commands: &[
            "kubectl set resources {{ref}} -n {{ns}} -c {{container}} --limits=memory={{mem_new}}",
            "kubectl top pod {{pod}} -n {{ns}} --containers",
        ],
        ..BASE
    },
    Rule {
        id: "oom-in-output",
        cause: Cause::OomKilled,
        patterns: &[&[
            "java.lang.outofmemoryerror",
            "javascript heap out of memory",
            "runtime: out of memory",
            "memoryerror",
            "cannot allocate memory",
            "oomkilling",
            "memory cgroup out of memory",
        ]],
        confidence: 0.8,
        mutates: true,
        facts: &["memory limit {{mem_limit}}, request {{mem_request}}"],
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) ran out of memory (its output says so) within {{mem_limit_phrase}}.",
        fix: "{{mem_fix}} If the runtime caps its own heap (JVM, Node), raise that cap with the limit.",
        commands: &[
            "kubectl set resources {{ref}} -n {{ns}} -c {{container}} --limits=memory={{mem_new}}",
            "kubectl top pod {{pod}} -n {{ns}} --containers",
        ],
        ..BASE
    },
    // ----------------------------------------------- start failures, exit codes
    Rule {
        id: "command-not-found",
        cause: Cause::CommandNotFound,
        kinds: &[F::ContainerStartError, F::CrashLoopBackOff, F::Failed],
        patterns: &[
            &["exec:", "executable file not found", "command not found"],
            &["not found", "no such file or directory"],
        ],
        sources: MSG | EVT,
        confidence: 0.95,
        mutates: true,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot start: its command {{exec}} does not exist in image {{image}}.",
        fix: "Fix the container's command/args (or the image's ENTRYPOINT) to a path that exists in the image.",
        commands: &[
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.command}{\" \"}{{{container_jp}}.args}'",
            "kubectl debug {{pod}} -n {{ns}} -it --copy-to={{pod}}-debug --container={{container}} -- sh -c 'ls -l {{exec}}; echo $PATH'",
            DEBUG_DONE,
            "kubectl patch {{ref}} -n {{ns}} --type=json -p='[{\"op\":\"add\",\"path\":\"{{cpath}}/command\",\"value\":[\"<path-in-image>\"]}]'",
        ],
        ..BASE
    },
    Rule {
        id: "not-executable",
        cause: Cause::NotExecutable,
        kinds: &[F::ContainerStartError, F::CrashLoopBackOff, F::Failed],
        patterns: &[
            &["exec:", "exec format error", "exec user process"],
            &["permission denied", "exec format error"],
        ],
        sources: MSG | EVT,
        confidence: 0.9,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot start: its command {{exec}} is not executable (no execute bit, or built for another CPU architecture).",
        fix: "Make the file executable in the image (chmod +x in the Dockerfile) or, on `exec format error`, build the image for the node's architecture.",
        commands: &[
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.command}{\" \"}{{{container_jp}}.args}'",
            "kubectl debug {{pod}} -n {{ns}} -it --copy-to={{pod}}-debug --container={{container}} -- sh -c 'ls -l {{exec}}'",
            DEBUG_DONE,
            "kubectl get node {{node}} -o jsonpath='{.status.nodeInfo.architecture}'",
        ],
        ..BASE
    },
    Rule {
        id: "exit-127",
        cause: Cause::CommandNotFound,
        exit: Exit::Codes(&[127], &[]),
        confidence: 0.9,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) exits with 127: a command it runs (its entrypoint or one its script calls) was not found.",
        fix: "Read the last lines of the previous run for the missing command, then fix the command/args or install the tool in image {{image}}.",
        commands: &[
            PREVIOUS_LOGS,
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.command}{\" \"}{{{container_jp}}.args}'",
        ],
        ..BASE
    },
    Rule {
        id: "exit-126",
        cause: Cause::NotExecutable,
        exit: Exit::Codes(&[126], &[]),
        confidence: 0.85,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) exits with 126: a command it runs was found but cannot be executed (permissions or architecture).",
        fix: "Make the script or binary executable in image {{image}} (chmod +x), or build it for the node's architecture.",
        commands: &[
            PREVIOUS_LOGS,
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.command}{\" \"}{{{container_jp}}.args}'",
        ],
        ..BASE
    },
    Rule {
        id: "segmentation-fault",
        cause: Cause::Segfault,
        exit: Exit::Codes(&[139], &[11]),
        confidence: 0.9,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) crashed with a segmentation fault (exit 139, SIGSEGV) in image {{image}}.",
        fix: "A native crash: check native libraries against the base image (glibc vs musl), the image's architecture, and whether the last image change introduced it (roll back to compare).",
        commands: &[PREVIOUS_LOGS, "kubectl rollout history {{ref}} -n {{ns}}"],
        ..BASE
    },
    Rule {
        id: "segmentation-fault-output",
        cause: Cause::Segfault,
        patterns: &[&["segmentation fault", "sigsegv"]],
        sources: MSG | LOG,
        confidence: 0.88,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) crashed with a segmentation fault (its output says so).",
        fix: "A native crash: check native libraries against the base image (glibc vs musl), the image's architecture, and whether the last image change introduced it.",
        commands: &[PREVIOUS_LOGS, "kubectl rollout history {{ref}} -n {{ns}}"],
        ..BASE
    },
    // ------------------------------------- causes quoted from the run's output
    Rule {
        id: "disk-full",
        cause: Cause::DiskFull,
        patterns: &[&["no space left on device", "enospc", "disk quota exceeded"]],
        confidence: 0.95,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) fails because a filesystem it writes to is full (no space left on device).",
        fix: "Find which mount is full: resize its PersistentVolumeClaim (if the StorageClass allows expansion), clean it up, or raise the emptyDir/ephemeral-storage limit.",
        commands: &[
            "kubectl debug {{pod}} -n {{ns}} -it --copy-to={{pod}}-debug --container={{container}} -- df -h",
            DEBUG_DONE,
            "kubectl get pvc -n {{ns}}",
            "kubectl patch pvc <claim> -n {{ns}} -p '{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"<larger-size>\"}}}}'",
        ],
        ..BASE
    },
    Rule {
        id: "x509-certificate-error",
        cause: Cause::TlsCertificateError,
        patterns: &[&[
            "x509:",
            "certificate has expired",
            "certificate signed by unknown authority",
            "certificate_verify_failed",
            "ssl certificate problem",
            "pkix path building failed",
            "tls: failed to verify certificate",
        ]],
        sources: MSG | LOG,
        confidence: 0.92,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) fails a TLS handshake: a certificate is expired, for another name, or signed by a CA it does not trust.",
        fix: "Check the certificate the peer presents (expiry, names, issuer); renew it, or mount the issuing CA into the container's trust store.",
        commands: &[
            PREVIOUS_LOGS,
            "kubectl debug {{pod}} -n {{ns}} -it --image=alpine/openssl:3.5.0 -- s_client -connect {{tls_host}}:443 -servername {{tls_host}} -showcerts",
        ],
        ..BASE
    },
    Rule {
        id: "dns-resolution-error",
        cause: Cause::DnsResolutionFailed,
        patterns: &[&[
            "no such host",
            "server misbehaving",
            "temporary failure in name resolution",
            "name or service not known",
            "could not resolve host",
            "enotfound",
            "unknownhostexception",
            "nodename nor servname provided",
        ]],
        sources: MSG | LOG,
        confidence: 0.9,
        facts: &["host {{host}}"],
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot resolve {{host}}.",
        fix: "Check that {{host}} exists (a Service in the right namespace, spelled as the app expects), and that cluster DNS (CoreDNS) is healthy.",
        commands: &[
            "kubectl run dns-check-{{pod}} -n {{ns}} --rm -i --restart=Never --image=busybox:1.36 -- nslookup {{host}}",
            "kubectl get svc -n {{ns}}",
            "kubectl logs -n kube-system -l k8s-app=kube-dns --tail=50",
        ],
        ..BASE
    },
    Rule {
        id: "host-port-conflict",
        cause: Cause::PortInUse,
        patterns: &[&[
            "address already in use",
            "port is already allocated",
            "eaddrinuse",
            "address in use",
        ]],
        sources: MSG | EVT | LOG,
        confidence: 0.9,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot bind its port: another process already uses it (another container in the pod, or a hostPort on the node).",
        fix: "Give each container in the pod its own port, and avoid hostPort (or hostNetwork) unless needed: two replicas on one node then collide.",
        commands: &[
            "kubectl get pod {{pod}} -n {{ns}} -o jsonpath='{range .spec.containers[*]}{.name}{\" \"}{.ports}{\"\\n\"}{end}'",
            "kubectl get pod {{pod}} -n {{ns}} -o jsonpath='{.spec.hostNetwork}'",
        ],
        ..BASE
    },
    Rule {
        id: "permission-denied",
        cause: Cause::PermissionDenied,
        patterns: &[&[
            "permission denied",
            "eacces",
            "operation not permitted",
            "read-only file system",
        ]],
        sources: MSG | LOG,
        confidence: 0.8,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) is denied access to a file, directory or socket it needs.",
        fix: "Check which user the container runs as and who owns the path: set securityContext runAsUser/fsGroup to match the volume, or make the path writable in the image (readOnlyRootFilesystem needs an emptyDir for scratch paths).",
        commands: &[
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{tpl_jp}}.securityContext}{\" \"}{{{container_jp}}.securityContext}'",
            "kubectl debug {{pod}} -n {{ns}} -it --copy-to={{pod}}-debug --container={{container}} -- id",
            DEBUG_DONE,
            PREVIOUS_LOGS,
        ],
        ..BASE
    },
    Rule {
        id: "connection-refused",
        cause: Cause::ConnectionRefused,
        patterns: &[&["connection refused", "econnrefused"]],
        sources: MSG | LOG,
        confidence: 0.85,
        facts: &["target {{target}}"],
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) fails because a dependency refuses connections ({{target}}): it is down, not ready, or listening elsewhere.",
        fix: "Check the dependency is running and its Service has endpoints on that port; make the app retry at startup instead of exiting.",
        commands: &[
            "kubectl get endpoints -n {{ns}}",
            "kubectl get pods -n {{ns}} -o wide",
            PREVIOUS_LOGS,
        ],
        ..BASE
    },
    Rule {
        id: "service-unavailable",
        cause: Cause::ConnectionRefused,
        patterns: &[&["503 service unavailable", "service unavailable"]],
        sources: MSG | LOG,
        confidence: 0.6,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) fails because a dependency answers 503 Service Unavailable: its backends are down or not ready.",
        fix: "Check the dependency's pods and readiness; make the app retry instead of exiting.",
        commands: &[
            "kubectl get endpoints -n {{ns}}",
            "kubectl get pods -n {{ns}} -o wide",
            PREVIOUS_LOGS,
        ],
        ..BASE
    },
    // ----------------------------------------------------------------- probes
    probe_timeout!(
        ProbeSlot::Startup,
        "startup-probe-timeout",
        Cause::StartupProbeFailed,
        &["startup probe failed"]
    ),
    probe_failed!(
        ProbeSlot::Startup,
        "startup-probe-failure",
        Cause::StartupProbeFailed,
        &["startup probe failed", "failed startup probe"],
        "The startup probe of container {{container}} ({{ref}}, namespace {{ns}}) fails: the app does not come up within {{probe_budget}}s (failureThreshold × periodSeconds) and is restarted.",
        "If the app is just slow to start, give it more time (failureThreshold {{probe_threshold}} → {{probe_threshold_new}}); otherwise its logs say why it does not start.",
    ),
    probe_timeout!(
        ProbeSlot::Liveness,
        "liveness-probe-timeout",
        Cause::LivenessProbeFailed,
        &["liveness probe failed"]
    ),
    probe_failed!(
        ProbeSlot::Liveness,
        "liveness-probe-failure",
        Cause::LivenessProbeFailed,
        &["liveness probe failed", "failed liveness probe"],
        "The liveness probe of container {{container}} ({{ref}}, namespace {{ns}}) keeps failing, so the kubelet restarts it: {{message}}",
        "Check the probe's path, port and expected answer against the app; if the app is healthy but slow after start, add a startupProbe or raise failureThreshold ({{probe_threshold}} → {{probe_threshold_new}}).",
    ),
    probe_timeout!(
        ProbeSlot::Readiness,
        "readiness-probe-timeout",
        Cause::ReadinessProbeFailed,
        &["readiness probe failed"]
    ),
    probe_failed!(
        ProbeSlot::Readiness,
        "readiness-probe-http-error",
        Cause::ReadinessProbeFailed,
        &[
            "readiness probe failed: http probe failed with statuscode",
            "readiness probe failed: error: got http code"
        ],
        "The readiness probe of container {{container}} ({{ref}}, namespace {{ns}}) gets an HTTP error status, so it gets no traffic: {{message}}",
        "The endpoint answers but not with 2xx/3xx: usually a dependency the health check calls is down. Check the app's logs and the probe's path.",
    ),
    probe_failed!(
        ProbeSlot::Readiness,
        "readiness-probe-failure",
        Cause::ReadinessProbeFailed,
        &["readiness probe failed"],
        "The readiness probe of container {{container}} ({{ref}}, namespace {{ns}}) keeps failing, so it gets no traffic: {{message}}",
        "Check the probe's path and port against the app, and whether the app waits on a dependency; raise failureThreshold ({{probe_threshold}} → {{probe_threshold_new}}) only if it is merely slow.",
    ),
    // ---------------------------------------------------------- generic exits
    Rule {
        id: "killed-sigkill",
        cause: Cause::KilledSigkill,
        exit: Exit::Codes(&[137], &[9]),
        confidence: 0.75,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) was killed with SIGKILL (exit 137) but not for memory: a failed liveness probe, a shutdown that outran terminationGracePeriodSeconds, or a kill from outside.",
        fix: "Look at the events for Killing/Unhealthy lines; if it was stopped during shutdown, make it exit on SIGTERM faster or raise terminationGracePeriodSeconds.",
        commands: &[
            EVENTS,
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{tpl_jp}}.terminationGracePeriodSeconds}'",
            PREVIOUS_LOGS,
        ],
        ..BASE
    },
    Rule {
        id: "init-container-failed",
        cause: Cause::AppErrorExit,
        init: Some(true),
        exit: Exit::NonZero,
        confidence: 0.9,
        summary: "Init container {{container}} of {{ref}} (namespace {{ns}}) fails (exit {{exit_code}}), so the main containers never start.",
        fix: "Its logs say what it waits for or fails on (a database, a migration, a file); fix that, and the pod proceeds on its own.",
        commands: &[PREVIOUS_LOGS, DESCRIBE],
        ..BASE
    },
    Rule {
        id: "panic-stack-trace",
        cause: Cause::AppErrorExit,
        patterns: &[&[
            "panic:",
            "fatal error:",
            "traceback (most recent call last)",
            "unhandled exception",
            "exception in thread",
            "uncaught exception",
        ]],
        sources: MSG | LOG,
        confidence: 0.8,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) crashes with an unhandled error: {{message}}",
        fix: "The application fails on its own: the quoted error names the cause (a missing file, bad config, a bug). Fix it, or roll back to the last good image.",
        commands: &[
            PREVIOUS_LOGS,
            "kubectl rollout history {{ref}} -n {{ns}}",
            "kubectl rollout undo {{ref}} -n {{ns}}",
        ],
        ..BASE
    },
    Rule {
        id: "failed-to-start-container",
        cause: Cause::Unknown,
        kinds: &[F::ContainerStartError],
        confidence: 0.5,
        summary: "The runtime failed to start container {{container}} of {{ref}} (namespace {{ns}}): {{message}}",
        fix: "Read the runtime's error: check the image's entrypoint, the mounts and the securityContext.",
        commands: &[DESCRIBE, EVENTS],
        ..BASE
    },
    Rule {
        id: "crashloop-exit-zero",
        cause: Cause::AppErrorExit,
        kinds: &[F::CrashLoopBackOff, F::HighRestartCount],
        exit: Exit::Zero,
        confidence: 0.6,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) keeps exiting with 0: its process finishes, but a Deployment expects it to run forever.",
        fix: "Make the command run in the foreground (no daemonising, no one-shot script); if it is a one-off task, run it as a Job instead.",
        commands: &[
            PREVIOUS_LOGS,
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.command}{\" \"}{{{container_jp}}.args}'",
        ],
        ..BASE
    },
    Rule {
        id: "app-error-exit",
        cause: Cause::AppErrorExit,
        exit: Exit::NonZero,
        confidence: 0.6,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) exits with code {{exit_code}}: the application fails on its own.",
        fix: "The last lines of its log (the command below) say why; a recent change (image, config) is the usual suspect.",
        commands: &[
            PREVIOUS_LOGS,
            DESCRIBE,
            "kubectl rollout history {{ref}} -n {{ns}}",
        ],
        ..BASE
    },
    Rule {
        id: "crashloop-generic",
        cause: Cause::AppErrorExit,
        kinds: &[F::CrashLoopBackOff],
        confidence: 0.5,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) is restarting repeatedly (CrashLoopBackOff).",
        fix: "The previous run's logs and exit code show why it stops.",
        commands: &[PREVIOUS_LOGS, DESCRIBE],
        ..BASE
    },
    Rule {
        id: "not-ready-readiness-probe",
        cause: Cause::ReadinessProbeFailed,
        kinds: &[F::NotReady],
        probe: Some(ProbeSlot::Readiness),
        needs_probe: true,
        confidence: 0.6,
        facts: &["{{probe_field}}: {{probe_desc}}"],
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) runs but its readiness probe does not pass ({{probe_desc}}).",
        fix: "The Unhealthy events give the probe's error; check the probe's path and port against the app and whether it waits on a dependency.",
        commands: &[EVENTS, PREVIOUS_LOGS],
        ..BASE
    },
    // --------------------------------------------------------------- fallback
    Rule {
        id: "unknown",
        cause: Cause::Unknown,
        confidence: 0.2,
        summary: "No known cause matched {{kind}} ({{reason}}) of pod {{pod}} ({{ref}}, namespace {{ns}}).",
        fix: "Read the pod's events and the previous run's logs for the error.",
        commands: &[DESCRIBE, EVENTS, PREVIOUS_LOGS],
        ..BASE
    },
];

/// Free text a rule may match, with where it came from (for evidence).
struct Text<'a> {
    source: u8,
    label: &'static str,
    text: &'a str,
    lower: String,
}

fn texts<'a>(ctx: &Context<'a>, c: Option<&'a ContainerRecord>) -> Vec<Text<'a>> {
    let mut messages: Vec<&'a str> = vec![&ctx.finding.message];
    if let Some(c) = c {
        match &c.state {
            ContainerState::Waiting {
                message: Some(m), ..
            } => messages.push(m),
            ContainerState::Terminated(t) => messages.extend(t.message.as_deref()),
            _ => {}
        }
        if let Some(t) = &c.last_terminated {
            messages.extend(t.message.as_deref());
        }
    }
    messages.extend(ctx.pod.message.as_deref());
    messages.extend(
        ctx.pod
            .scheduled
            .as_ref()
            .and_then(|s| s.message.as_deref()),
    );
    let mut out: Vec<Text<'a>> = Vec::new();
    for m in messages {
        if !m.trim().is_empty() && !out.iter().any(|t| t.text == m) {
            out.push(Text {
                source: MSG,
                label: "message",
                text: m,
                lower: m.to_ascii_lowercase(),
            });
        }
    }
    let lines = |source, label, v: &'a [String]| {
        v.iter().map(move |l| Text {
            source,
            label,
            text: l,
            lower: l.to_ascii_lowercase(),
        })
    };
    out.extend(lines(EVT, "event", ctx.events));
    out.extend(lines(LOG, "log", ctx.logs));
    out
}

/// The container a finding is about: named by the finding, else named in
/// the pod's message (`Container worker was using …`), else the first.
fn subject<'a>(ctx: &Context<'a>) -> Option<&'a ContainerRecord> {
    let pod = ctx.pod;
    if let Some(name) = &ctx.finding.container {
        let list = if ctx.finding.init_container {
            &pod.init_containers
        } else {
            &pod.containers
        };
        if let Some(c) = list.iter().find(|c| *c.name == **name) {
            return Some(c);
        }
    }
    let named = [pod.message.as_deref(), Some(ctx.finding.message.as_str())]
        .into_iter()
        .flatten()
        .find_map(|m| {
            pod.containers
                .iter()
                .find(|c| m.contains(&format!("Container {} ", c.name)))
        });
    // Else the first that is not fine: where a pod-level finding is stuck.
    let unwell = || {
        let init = pod
            .init_containers
            .iter()
            .find(|c| !matches!(&c.state, ContainerState::Terminated(t) if t.exit_code == 0));
        init.or_else(|| pod.containers.iter().find(|c| !c.ready))
    };
    named.or_else(unwell).or_else(|| pod.containers.first())
}

/// The termination reason behind an exit code, for evidence.
fn exit_reason<'a>(ctx: &'a Context, c: Option<&'a ContainerRecord>) -> &'a str {
    let term = c.and_then(|c| match &c.state {
        ContainerState::Terminated(t) => Some(t),
        _ => c.last_terminated.as_ref(),
    });
    term.and_then(|t| t.reason.as_deref())
        .filter(|r| !r.is_empty())
        .unwrap_or(&ctx.finding.reason)
}

/// A line for evidence: whitespace collapsed, and when it is long, a window
/// that keeps the matched part (byte `at`) in view.
fn quote(text: &str, at: usize) -> String {
    let start = at.saturating_sub(MAX_QUOTE / 2);
    let start = (start..=at.min(text.len()))
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let window = if start > 0 { &text[start..] } else { text };
    let flat: Vec<&str> = window.split_whitespace().collect();
    let body = cap(&flat.join(" "), MAX_QUOTE);
    if start > 0 {
        format!("…{body}")
    } else {
        body
    }
}

/// Whether `rule` applies; if so, the evidence and the line that matched.
fn check<'t>(
    rule: &Rule,
    ctx: &Context,
    c: Option<&ContainerRecord>,
    texts: &'t [Text],
) -> Option<(Vec<String>, Option<&'t str>)> {
    let f = ctx.finding;
    let mut evidence = Vec::new();
    if !rule.kinds.is_empty() || !rule.reasons.is_empty() {
        let hit = rule.kinds.contains(&f.kind)
            || rule
                .reasons
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&f.reason));
        if !hit {
            return None;
        }
        evidence.push(if f.reason.is_empty() || f.reason == f.kind.as_str() {
            format!("finding {}", f.kind)
        } else {
            format!("finding {}, reason {}", f.kind, cap(&f.reason, 80))
        });
    }
    if rule.init.is_some_and(|i| i != f.init_container) {
        return None;
    }
    let code_hit = match rule.exit {
        Exit::Any => None,
        Exit::Zero => Some(f.exit_code == Some(0)),
        Exit::NonZero => Some(f.exit_code.is_some_and(|e| e != 0)),
        Exit::Codes(codes, signals) => Some(
            f.exit_code.is_some_and(|e| codes.contains(&e))
                || f.signal.is_some_and(|s| signals.contains(&s)),
        ),
    };
    // Quoted whenever known, not only when the rule asks for it: it is the
    // first thing a reader checks.
    match (code_hit, f.exit_code) {
        (Some(false), _) => return None,
        (_, Some(code)) => {
            let mut e = format!("exit code {code}, reason {}", cap(exit_reason(ctx, c), 80));
            if let Some(s) = f.signal {
                e.push_str(&format!(", signal {s}"));
            }
            evidence.push(e);
        }
        (Some(true), None) => evidence.push(format!("signal {}", f.signal.unwrap_or_default())),
        (None, None) => {}
    }
    if rule.needs_probe {
        let has = c.is_some_and(|c| match rule.probe {
            Some(ProbeSlot::Liveness) => c.liveness.is_some(),
            Some(ProbeSlot::Readiness) => c.readiness.is_some(),
            Some(ProbeSlot::Startup) => c.startup.is_some(),
            None => true,
        });
        if !has {
            return None;
        }
    }
    let mut matched = None;
    if let Some(re) = rule.regexes {
        for (regex, source) in [(&re.message, MSG), (&re.events, EVT), (&re.logs, LOG)] {
            let Some(regex) = regex else { continue };
            let (line, at) = texts
                .iter()
                .filter(|t| t.source == source)
                .find_map(|t| regex.find(t.text).map(|m| (t, m.start())))?;
            evidence.push(format!("{}: {}", line.label, quote(line.text, at)));
            matched.get_or_insert(line.text);
        }
    } else if !rule.patterns.is_empty() {
        let line = texts.iter().find(|t| {
            t.source & rule.sources != 0
                && rule
                    .patterns
                    .iter()
                    .all(|group| group.iter().any(|p| t.lower.contains(p)))
        })?;
        let at = rule
            .patterns
            .iter()
            .filter_map(|g| g.iter().find_map(|p| line.lower.find(p)))
            .max()
            .unwrap_or(0);
        evidence.push(format!("{}: {}", line.label, quote(line.text, at)));
        matched = Some(line.text);
    } else if let Some(t) = texts
        .iter()
        .find(|t| t.source == MSG && !t.lower.starts_with("back-off"))
    {
        // No pattern: the message still shows what the rule saw (a start
        // error, the tail of a crashed run).
        evidence.push(format!("{}: {}", t.label, quote(t.text, 0)));
    }
    Some((evidence, matched))
}

/// The rules in force: a user's (`RULES_FILE`) first, then the built-in
/// ones they do not replace or disable. The built-in catch-all stays last.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<&'static Rule>,
}

impl RuleSet {
    pub fn builtin() -> RuleSet {
        RuleSet {
            rules: RULES.iter().collect(),
        }
    }

    /// `user` rules first; built-in rules whose id is in `user` or in
    /// `disabled` are dropped (the catch-all never is).
    pub fn with_user(user: Vec<&'static Rule>, disabled: &[String]) -> RuleSet {
        let last = RULES.len() - 1;
        let mut rules = user.clone();
        rules.extend(RULES.iter().enumerate().filter_map(|(i, r)| {
            let gone = user.iter().any(|u| u.id == r.id) || disabled.iter().any(|d| d == r.id);
            (i == last || !gone).then_some(r)
        }));
        RuleSet { rules }
    }

    /// Ids of the built-in rules.
    pub fn builtin_ids() -> Vec<&'static str> {
        RULES.iter().map(|r| r.id).collect()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that matches, as a diagnosis with the real names filled in.
    pub fn diagnose(&self, ctx: &Context) -> Diagnosis {
        diagnose_with(self.rules.iter().copied(), ctx)
    }
}

/// The first built-in rule that matches (see `RuleSet` for user rules).
pub fn diagnose(ctx: &Context) -> Diagnosis {
    diagnose_with(RULES.iter(), ctx)
}

fn diagnose_with(mut rules: impl Iterator<Item = &'static Rule>, ctx: &Context) -> Diagnosis {
    let c = subject(ctx);
    let texts = texts(ctx, c);
    // The last rule matches everything; the fallback below is for a table edited badly.
    let found = rules.find_map(|r| check(r, ctx, c, &texts).map(|m| (r, m)));
    // The crashed run's own log line beats what only hints at the cause (see `log_rules`).
    if let Some((rule, _)) = &found {
        let position = RULES.iter().position(|r| std::ptr::eq(r, *rule));
        let quoted = RULES
            .iter()
            .position(|r| r.id == "disk-full")
            .unwrap_or(RULES.len());
        if super::log_rules::replaces(rule.id, position, quoted) {
            if let Some(mut d) = super::log_rules::diagnose(ctx, c) {
                // As rollout-aware as the table's own fixes.
                let mutates = d.fix.commands.iter().any(|c| edits_template(c));
                in_rollout(ctx, mutates, &mut d.fix.text, &mut d.fix.commands);
                return d;
            }
        }
    }
    let (rule, (mut evidence, matched)) =
        found.unwrap_or((&RULES[RULES.len() - 1], (Vec::new(), None)));
    let mut scan: Vec<&str> = matched.into_iter().collect();
    scan.extend(texts.iter().map(|t| t.text));
    let vars = Vars {
        ctx,
        container: c,
        probe: rule.probe,
        texts: scan,
    };
    if evidence.is_empty() {
        // A rule with no criteria (the catch-all) still says what it looked at.
        evidence.push(format!(
            "finding {}, reason {}",
            ctx.finding.kind,
            cap(&ctx.finding.reason, 80)
        ));
        if let Some(t) = texts.first() {
            evidence.push(format!("{}: {}", t.label, quote(t.text, 0)));
        }
    }
    evidence.extend(rule.facts.iter().filter_map(|t| fill_all(t, &vars)));
    let mut text = fill(rule.fix, &vars);
    if rule.mutates {
        match ctx.workload.kind.as_str() {
            "Pod" => text.push_str(
                " This is a bare pod: its spec cannot be changed in place, so change its manifest and recreate it.",
            ),
            "Job" => text.push_str(&fill(
                " A Job's pod template cannot be changed: export it (kubectl get {{ref}} -n {{ns}} -o yaml), change it and recreate it (kubectl replace --force -f <file>).",
                &vars,
            )),
            _ => {}
        }
    }
    let mut commands = commands(rule, ctx.workload.kind.as_str(), &vars);
    in_rollout(ctx, rule.mutates, &mut text, &mut commands);
    Diagnosis {
        cause: rule.cause,
        summary: fill(rule.summary, &vars),
        confidence: rule.confidence,
        evidence,
        fix: Fix { text, commands },
        rule: rule.id,
        ai: None,
        backend: None,
        node_incident: None,
    }
}

/// A change to the pod template (`kubectl set …`, `kubectl patch …`, or the
/// `replace --force` recreation of a copy).
fn edits_template(cmd: &str) -> bool {
    cmd.starts_with("kubectl set ")
        || cmd.starts_with("kubectl patch ")
        || cmd.contains("kubectl replace --force")
}

/// The fix as a rollout changes it. For an old revision while a newer one
/// rolls out, no template change: it would start one more rollout from the
/// newer revision's template (a broken image included), so the newer
/// revision comes first. For the newest revision of a rollout gone wrong,
/// `kubectl rollout undo` restores the revision that still runs.
fn in_rollout(ctx: &Context, mutates: bool, text: &mut String, commands: &mut Vec<String>) {
    let w = ctx.workload;
    let (ref_, ns) = (
        format!("{}/{}", w.kind.to_ascii_lowercase(), w.name),
        &*ctx.pod.namespace,
    );
    match ctx.rollout {
        Rollout::Steady => {}
        Rollout::Superseded {
            newer,
            newer_failing,
        } => {
            let failing = match newer_failing {
                Some(k) => format!(", which fails too ({k}): fix that first"),
                None => String::new(),
            };
            let before = commands.len();
            commands.retain(|c| !edits_template(c));
            let held = if mutates || commands.len() < before {
                " Do not change the pod template until that rollout is sorted out: a change now starts another rollout from the new revision's template."
            } else {
                ""
            };
            *text = format!(
                "These pods belong to the old revision {}; {ref_} is rolling out {newer}{failing}.{held} {text}",
                revision_of_pod(ctx).unwrap_or("?"),
            );
            push_unique(commands, format!("kubectl rollout status {ref_} -n {ns}"));
        }
        Rollout::Newest { older } => {
            *text = format!(
                "{ref_}'s rollout of this revision fails while the previous revision {older} still runs: `kubectl rollout undo` restores it while you fix this one. {text}"
            );
            push_unique(commands, format!("kubectl rollout undo {ref_} -n {ns}"));
            push_unique(commands, format!("kubectl rollout status {ref_} -n {ns}"));
        }
    }
}

fn revision_of_pod<'a>(ctx: &Context<'a>) -> Option<&'a str> {
    ctx.pod
        .owner
        .as_ref()
        .filter(|o| &*o.kind == "ReplicaSet")
        .map(|o| &*o.name)
}

fn push_unique(commands: &mut Vec<String>, cmd: String) {
    if !commands.contains(&cmd) {
        commands.push(cmd);
    }
}

/// The rule's commands for this workload kind: `kubectl rollout` only where there is a
/// rollout, and a change to a bare pod's spec (other than its image) or to a Job's pod
/// template, which the API server refuses in place, made to a copy that
/// `kubectl replace --force` recreates.
fn commands(rule: &Rule, kind: &str, vars: &Vars) -> Vec<String> {
    let rolls = matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet");
    let target = fill(" {{ref}} -n {{ns}}", vars);
    rule.commands
        .iter()
        .filter(|t| rolls || !t.starts_with("kubectl rollout "))
        .map(|t| {
            let cmd = fill(t, vars);
            let in_place = match kind {
                "Pod" => cmd.starts_with("kubectl set image "),
                "Job" => false,
                _ => true,
            };
            // A container that never restarted has no previous run to show:
            // its logs are those of its one (terminated or waiting) run.
            let cmd = if vars.container.is_some_and(|c| c.restart_count == 0) {
                cmd.replace(" --previous", "")
            } else {
                cmd
            };
            let edit = cmd.starts_with("kubectl set ") || cmd.starts_with("kubectl patch ");
            match cmd.strip_prefix("kubectl ") {
                Some(rest) if rule.mutates && edit && !in_place && rest.contains(&target) => {
                    format!(
                        "kubectl get{target} -o json | kubectl {} --local -f - -o json | kubectl replace --force -f -",
                        rest.replacen(&target, "", 1)
                    )
                }
                _ => cmd,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::classify::{NothingKnown, Thresholds, classify};
    use crate::detect::workload::workload_of;
    use crate::kube::types::Pod;
    use crate::model::{Finding, PodRecord};
    use crate::util::time::parse_rfc3339;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../tests/fixtures/pods/", $name, ".json")).to_owned()
        };
    }

    fn record(json: &str) -> PodRecord {
        PodRecord::from(serde_json::from_str::<Pod>(json).unwrap())
    }

    /// The pod's first finding at `hms` on the fixtures' day (2024-05-14),
    /// diagnosed with these event and log lines.
    fn run(json: &str, hms: &str, events: &[&str], logs: &[&str]) -> (Finding, Diagnosis) {
        let pod = record(json);
        let now = parse_rfc3339(&format!("2024-05-14T{hms}Z")).unwrap();
        let finding = classify(&pod, &NothingKnown, now, &Thresholds::default())
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no finding at {hms} for {}", pod.name));
        let workload = workload_of(&pod);
        let events: Vec<String> = events.iter().map(|s| s.to_string()).collect();
        let logs: Vec<String> = logs.iter().map(|s| s.to_string()).collect();
        let d = diagnose(&Context {
            finding: &finding,
            pod: &pod,
            workload: &workload,
            events: &events,
            logs: &logs,
            rollout: &crate::model::Rollout::Steady,
        });
        (finding, d)
    }

    // ------------------------------------------------ kubelet-shaped pods

    /// A pod of deployment shop/web: `sidecar` at index 0 and `web` at
    /// index 1 (limits, requests and three probes), with this status.
    fn web_pod(phase: &str, status: &str) -> String {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod",
  "metadata":{{"name":"web-7c9d8f6b5-q2w3e","namespace":"shop","uid":"1d5c7a52-2b51-4c1e-9f0e-6a1f4f3c2b10",
    "creationTimestamp":"2024-05-14T09:00:00Z",
    "ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7c9d8f6b5","uid":"0b7c1e2d","controller":true,"blockOwnerDeletion":true}}]}},
  "spec":{{"nodeName":"ip-10-0-12-34.eu-west-1.compute.internal","serviceAccountName":"web",
    "containers":[
      {{"name":"sidecar","image":"docker.io/envoyproxy/envoy:v1.30.1","resources":{{}}}},
      {{"name":"web","image":"registry.example.com/shop/web:1.4.3","terminationMessagePolicy":"FallbackToLogsOnError",
        "env":[{{"name":"DB_PASSWORD","valueFrom":{{"secretKeyRef":{{"name":"db-creds","key":"password"}}}}}}],
        "resources":{{"limits":{{"memory":"256Mi"}},"requests":{{"cpu":"500m","memory":"128Mi"}}}},
        "livenessProbe":{{"httpGet":{{"path":"/healthz","port":8080,"scheme":"HTTP"}},"timeoutSeconds":1,"periodSeconds":10,"failureThreshold":3,"successThreshold":1}},
        "readinessProbe":{{"httpGet":{{"path":"/ready","port":"http","scheme":"HTTP"}},"timeoutSeconds":2,"periodSeconds":5,"failureThreshold":3,"successThreshold":1}},
        "startupProbe":{{"tcpSocket":{{"port":8080}},"timeoutSeconds":1,"periodSeconds":10,"failureThreshold":30,"successThreshold":1}}}}]}},
  "status":{{"phase":"{phase}",{status}}}}}"#
        )
    }

    const SIDECAR_OK: &str = r#"{"name":"sidecar","image":"docker.io/envoyproxy/envoy:v1.30.1","ready":true,"restartCount":0,"started":true,"state":{"running":{"startedAt":"2024-05-14T09:00:03Z"}},"lastState":{}}"#;
    const UNREADY: &str = r#""conditions":[{"type":"Ready","status":"False","reason":"ContainersNotReady","message":"containers with unready status: [web]","lastProbeTime":null,"lastTransitionTime":"2024-05-14T09:00:30Z"}]"#;

    /// `web` in CrashLoopBackOff after a run that ended with `exit`/`reason`/`message`.
    fn crashloop(exit: i32, reason: &str, message: &str) -> String {
        let message = serde_json::to_string(message).unwrap();
        web_pod(
            "Running",
            &format!(
                r#"{UNREADY},"containerStatuses":[{SIDECAR_OK},
  {{"name":"web","image":"registry.example.com/shop/web:1.4.3","ready":false,"restartCount":6,"started":false,
    "state":{{"waiting":{{"reason":"CrashLoopBackOff","message":"back-off 5m0s restarting failed container=web pod=web-7c9d8f6b5-q2w3e_shop(1d5c7a52-2b51-4c1e-9f0e-6a1f4f3c2b10)"}}}},
    "lastState":{{"terminated":{{"exitCode":{exit},"reason":"{reason}","message":{message},"startedAt":"2024-05-14T09:58:00Z","finishedAt":"2024-05-14T09:58:10Z"}}}}}}]"#
            ),
        )
    }

    /// `web` running again after being killed (exit 137), restarted 5 times.
    fn restarted() -> String {
        web_pod(
            "Running",
            &format!(
                r#"{UNREADY},"containerStatuses":[{SIDECAR_OK},
  {{"name":"web","image":"registry.example.com/shop/web:1.4.3","ready":false,"restartCount":5,"started":true,
    "state":{{"running":{{"startedAt":"2024-05-14T09:59:51Z"}}}},
    "lastState":{{"terminated":{{"exitCode":137,"reason":"Error","startedAt":"2024-05-14T09:58:00Z","finishedAt":"2024-05-14T09:59:50Z"}}}}}}]"#
            ),
        )
    }

    /// `web` running but never ready.
    fn unready() -> String {
        web_pod(
            "Running",
            &format!(
                r#"{UNREADY},"containerStatuses":[{SIDECAR_OK},
  {{"name":"web","image":"registry.example.com/shop/web:1.4.3","ready":false,"restartCount":0,"started":true,
    "state":{{"running":{{"startedAt":"2024-05-14T09:00:05Z"}}}},"lastState":{{}}}}]"#
            ),
        )
    }

    /// `web` waiting with this reason and message (never started).
    fn waiting(reason: &str, message: &str) -> String {
        let message = serde_json::to_string(message).unwrap();
        web_pod(
            "Pending",
            &format!(
                r#"{UNREADY},"containerStatuses":[{SIDECAR_OK},
  {{"name":"web","image":"registry.example.com/shop/web:1.4.3","imageID":"","ready":false,"restartCount":0,"started":false,
    "state":{{"waiting":{{"reason":"{reason}","message":{message}}}}},"lastState":{{}}}}]"#
            ),
        )
    }

    fn unschedulable(message: &str) -> String {
        let message = serde_json::to_string(message).unwrap();
        web_pod(
            "Pending",
            &format!(
                r#""conditions":[{{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":{message},"lastProbeTime":null,"lastTransitionTime":"2024-05-14T09:00:00Z"}}],"qosClass":"Burstable""#
            ),
        )
    }

    fn evicted(message: &str) -> String {
        let message = serde_json::to_string(message).unwrap();
        web_pod(
            "Failed",
            &format!(
                r#""reason":"Evicted","message":{message},"containerStatuses":[
  {{"name":"web","image":"registry.example.com/shop/web:1.4.3","ready":false,"restartCount":0,"started":false,
    "state":{{"terminated":{{"exitCode":137,"reason":"Error","startedAt":"2024-05-14T09:00:03Z","finishedAt":"2024-05-14T09:41:17Z"}}}},"lastState":{{}}}}]"#
            ),
        )
    }

    // ----------------------------------------------------------- the table

    struct Case {
        name: &'static str,
        pod: String,
        hms: &'static str,
        events: &'static [&'static str],
        logs: &'static [&'static str],
        cause: &'static str,
        rule: &'static str,
        /// Substrings some command must contain (beyond the namespace).
        commands: &'static [&'static str],
    }

    fn cases() -> Vec<Case> {
        let c = |name, pod, cause, rule, commands| Case {
            name,
            pod,
            hms: "10:00:00",
            events: &[],
            logs: &[],
            cause,
            rule,
            commands,
        };
        vec![
            c(
                "an OOM kill in lastState doubles the 512Mi limit",
                fixture!("crashloop-oom-lastState"),
                "oom_killed",
                "oomkilled-container",
                &["kubectl set resources deployment/web -n shop -c web --limits=memory=1Gi"],
            ),
            c(
                "an OOM-killed Job run of a CronJob doubles its 1Gi limit",
                fixture!("job-oomkilled-phase-failed"),
                "oom_killed",
                "oomkilled-container",
                &["kubectl set resources cronjob/report -n batch -c report --limits=memory=2Gi"],
            ),
            c(
                "a Go panic in the termination message is an application error",
                fixture!("crashloop-error"),
                "app_error_exit",
                "panic-stack-trace",
                &["kubectl logs api-5f6d8b9c4-q7w2z -n shop -c api --previous --tail=100"],
            ),
            c(
                "a failed Job with a bare exit code is an application error",
                fixture!("job-failed-error"),
                "app_error_exit",
                "app-error-exit",
                // Never restarted: its only run is the current one, so no --previous.
                &["kubectl logs db-migrate-v41-5bq8n -n shop -c migrate --tail=100"],
            ),
            c(
                "a crash-looping init container blocks the pod",
                fixture!("init-crashloop"),
                "app_error_exit",
                "init-container-failed",
                &["-c wait-for-db --previous"],
            ),
            c(
                "a container that keeps exiting 0 is told to run in the foreground",
                fixture!("crashloop-exit-0"),
                "app_error_exit",
                "crashloop-exit-zero",
                &[
                    "kubectl get deployment/cron-shim -n ops -o jsonpath='{.spec.template.spec.containers[0].command}",
                ],
            ),
            c(
                "a missing entrypoint binary is command not found",
                fixture!("runcontainererror"),
                "command_not_found",
                "command-not-found",
                &[
                    "ls -l /app/server",
                    "\"path\":\"/spec/template/spec/containers/0/command\"",
                ],
            ),
            c(
                "a Job whose command is not in PATH is command not found",
                fixture!("starterror-terminated-job"),
                "command_not_found",
                "command-not-found",
                &["kubectl get job/db-migrate-v42 -n shop"],
            ),
            c(
                "exit 127 from a shell is command not found",
                crashloop(127, "Error", "sh: migrate: not found"),
                "command_not_found",
                "exit-127",
                &["kubectl logs web-7c9d8f6b5-q2w3e -n shop -c web --previous"],
            ),
            c(
                "exit 126 is a command that cannot be executed",
                crashloop(
                    126,
                    "Error",
                    "/docker-entrypoint.sh: line 3: /app/run: Permission denied",
                ),
                "not_executable",
                "exit-126",
                &["-c web --previous"],
            ),
            c(
                "a start error with permission denied on exec is not executable",
                waiting(
                    "RunContainerError",
                    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"/app/run.sh\": permission denied: unknown",
                ),
                "not_executable",
                "not-executable",
                &[
                    "kubectl debug web-7c9d8f6b5-q2w3e -n shop -it --copy-to=web-7c9d8f6b5-q2w3e-debug --container=web -- sh -c 'ls -l /app/run.sh'",
                    "kubectl delete pod web-7c9d8f6b5-q2w3e-debug -n shop",
                ],
            ),
            c(
                "exit 139 is a segmentation fault",
                crashloop(139, "Error", ""),
                "segfault",
                "segmentation-fault",
                &["kubectl rollout history deployment/web -n shop"],
            ),
            c(
                "exit 137 without OOMKilled is a SIGKILL",
                crashloop(137, "Error", ""),
                "killed_sigkill",
                "killed-sigkill",
                &[
                    "kubectl get events -n shop --field-selector involvedObject.name=web-7c9d8f6b5-q2w3e",
                ],
            ),
            Case {
                events: &[
                    "Warning Unhealthy: Liveness probe failed: Get \"http://10.1.2.3:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                    "Normal Killing: Container web failed liveness probe, will be restarted",
                ],
                ..c(
                    "a liveness probe timing out doubles its timeout at the container's index",
                    restarted(),
                    "liveness_probe_failed",
                    "liveness-probe-timeout",
                    &[
                        r#"kubectl patch deployment/web -n shop --type=json -p='[{"op":"replace","path":"/spec/template/spec/containers/1/livenessProbe/timeoutSeconds","value":2}]'"#,
                    ],
                )
            },
            Case {
                events: &[
                    "Warning Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500",
                ],
                ..c(
                    "a liveness probe answering 500 allows more failures",
                    restarted(),
                    "liveness_probe_failed",
                    "liveness-probe-failure",
                    &[
                        r#""path":"/spec/template/spec/containers/1/livenessProbe/failureThreshold","value":6"#,
                    ],
                )
            },
            Case {
                events: &[
                    "Warning Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503",
                ],
                ..c(
                    "a readiness probe answering 503 is a readiness failure",
                    unready(),
                    "readiness_probe_failed",
                    "readiness-probe-http-error",
                    &[
                        "kubectl get deployment/web -n shop -o jsonpath='{.spec.template.spec.containers[1].readinessProbe}'",
                    ],
                )
            },
            Case {
                events: &[
                    "Warning Unhealthy: Readiness probe failed: Get \"http://10.1.2.3:8080/ready\": context deadline exceeded",
                ],
                ..c(
                    "a readiness probe timing out doubles its 2s timeout",
                    unready(),
                    "readiness_probe_failed",
                    "readiness-probe-timeout",
                    &["/containers/1/readinessProbe/timeoutSeconds\",\"value\":4}]'"],
                )
            },
            c(
                "an unready container with a readiness probe and no events still points at the probe",
                unready(),
                "readiness_probe_failed",
                "not-ready-readiness-probe",
                &["kubectl get events -n shop"],
            ),
            Case {
                events: &[
                    "Warning Unhealthy: Startup probe failed: dial tcp 10.1.2.3:8080: connect: connection refused",
                ],
                ..c(
                    "a failing startup probe doubles its failure threshold",
                    restarted(),
                    "startup_probe_failed",
                    "startup-probe-failure",
                    &[
                        r#""path":"/spec/template/spec/containers/1/startupProbe/failureThreshold","value":60"#,
                    ],
                )
            },
            c(
                "a tag the registry does not have is image not found",
                fixture!("errimagepull"),
                "image_not_found",
                "image-not-found",
                &[
                    "chroot /host crictl pull registry.example.com/shop/web:1.4.4",
                    "kubectl set image deployment/web -n shop web=registry.example.com/shop/web:<existing-tag>",
                ],
            ),
            c(
                "an image pull back-off with no registry error checks the tag first",
                fixture!("imagepullbackoff"),
                "image_not_found",
                "image-pull-backoff",
                &["chroot /host crictl pull registry.example.com/shop/web:1.4.4"],
            ),
            Case {
                events: &[
                    "Warning Failed: Failed to pull image \"registry.example.com/shop/web:1.4.4\": rpc error: code = Unknown desc = failed to pull and unpack image \"registry.example.com/shop/web:1.4.4\": failed to resolve reference \"registry.example.com/shop/web:1.4.4\": pulling from host registry.example.com failed with status code [manifests 1.4.4]: 401 Unauthorized",
                ],
                ..c(
                    "a 401 from the registry sets up a pull secret for that registry",
                    fixture!("imagepullbackoff"),
                    "image_pull_unauthorized",
                    "image-pull-unauthorized",
                    &[
                        "kubectl create secret docker-registry regcred -n shop --docker-server=registry.example.com ",
                        r#"kubectl patch deployment/web -n shop --type=json -p='[{"op":"add","path":"/spec/template/spec/imagePullSecrets","value":[{"name":"regcred"}]}]'"#,
                        "kubectl patch serviceaccount default -n shop",
                    ],
                )
            },
            Case {
                events: &[
                    "Warning Failed: Failed to pull image \"registry.example.com/shop/web:1.4.4\": rpc error: code = Unknown desc = failed to pull and unpack image: failed to resolve reference: failed to do request: Head \"https://registry.example.com/v2/shop/web/manifests/1.4.4\": dial tcp: lookup registry.example.com on 10.96.0.10:53: no such host",
                ],
                ..c(
                    "a registry the node cannot resolve is a pull network error",
                    fixture!("imagepullbackoff"),
                    "image_pull_network",
                    "image-pull-network",
                    &["nslookup registry.example.com"],
                )
            },
            c(
                "an uppercase repository is an invalid image name, fixed in lowercase",
                fixture!("invalidimagename"),
                "invalid_image_name",
                "invalid-image-name",
                &[
                    "kubectl set image deployment/web -n shop web=registry.example.com/shop/web:1.4.3",
                ],
            ),
            c(
                "a missing ConfigMap is named and created",
                fixture!("createcontainerconfigerror-missing-configmap"),
                "missing_configmap",
                "missing-configmap",
                &[
                    "kubectl get configmaps -n shop",
                    "kubectl create configmap app-config -n shop --from-literal=<key>=<value>",
                ],
            ),
            c(
                "a missing Secret is named and created",
                waiting(
                    "CreateContainerConfigError",
                    "secret \"db-creds\" not found",
                ),
                "missing_secret",
                "missing-secret",
                &[
                    "kubectl get secrets -n shop",
                    "kubectl create secret generic db-creds -n shop",
                ],
            ),
            c(
                "a missing ConfigMap key is named and added",
                waiting(
                    "CreateContainerConfigError",
                    "couldn't find key DB_URL in ConfigMap shop/app-config",
                ),
                "missing_config_key",
                "missing-config-key",
                &[
                    "kubectl describe configmap app-config -n shop",
                    r#"kubectl patch configmap app-config -n shop --type=merge -p '{"data":{"DB_URL":"<value>"}}'"#,
                ],
            ),
            c(
                "insufficient cpu halves the biggest cpu request",
                fixture!("unschedulable-insufficient-cpu"),
                "insufficient_cpu",
                "unschedulable-insufficient-cpu",
                &[
                    "kubectl describe nodes | grep -A5 Allocated",
                    "kubectl set resources deployment/search -n shop -c search --requests=cpu=2",
                ],
            ),
            c(
                "insufficient memory halves the biggest memory request",
                unschedulable(
                    "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
                ),
                "insufficient_memory",
                "unschedulable-insufficient-memory",
                &["kubectl set resources deployment/web -n shop -c web --requests=memory=64Mi"],
            ),
            c(
                "a node selector no node matches",
                unschedulable(
                    "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
                ),
                "node_selector_mismatch",
                "unschedulable-node-selector",
                &[
                    "kubectl get deployment/web -n shop -o jsonpath='{.spec.template.spec.nodeSelector}",
                ],
            ),
            c(
                "an untolerated taint gets a toleration for its key",
                unschedulable(
                    "0/1 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
                ),
                "untolerated_taint",
                "unschedulable-untolerated-taint",
                &[
                    r#"[{"op":"add","path":"/spec/template/spec/tolerations","value":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists"}]}]"#,
                ],
            ),
            c(
                "an unbound claim keeps the pod unscheduled",
                unschedulable(
                    "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
                ),
                "unbound_pvc",
                "unschedulable-unbound-pvc",
                &["kubectl get pvc -n shop"],
            ),
            Case {
                events: &[
                    "Warning FailedMount: MountVolume.MountDevice failed for volume \"pvc-5b1f0c2e\" : rpc error: code = Internal desc = mount failed: exit status 32",
                ],
                ..c(
                    "a volume that fails to mount keeps the pod creating",
                    fixture!("pending-containercreating-volume"),
                    "volume_mount_failed",
                    "volume-mount-failed",
                    &["kubectl get events -n shop --field-selector involvedObject.name=db-0"],
                )
            },
            Case {
                events: &[
                    "Warning FailedMount: MountVolume.SetUp failed for volume \"config\" : configmap \"db-config\" not found",
                ],
                ..c(
                    "a ConfigMap volume that does not exist is a missing ConfigMap, not a mount failure",
                    fixture!("pending-containercreating-volume"),
                    "missing_configmap",
                    "missing-configmap",
                    &["kubectl create configmap db-config -n shop"],
                )
            },
            c(
                "a memory eviction sets the request to the usage the kubelet saw",
                fixture!("evicted-memory"),
                "evicted_memory",
                "evicted-memory",
                &[
                    // The fixture's hash is not safe-encoded, so the ReplicaSet is the workload.
                    "kubectl set resources replicaset/worker-6c5b4a3d2 -n shop -c worker --requests=memory=1800Mi --limits=memory=1800Mi",
                ],
            ),
            c(
                "a disk-pressure eviction points at the node",
                evicted("The node had condition: [DiskPressure]. "),
                "evicted_disk",
                "evicted-disk-pressure",
                &["kubectl describe node ip-10-0-12-34.eu-west-1.compute.internal"],
            ),
            c(
                "an ephemeral-storage eviction sets ephemeral-storage limits",
                evicted(
                    "Pod ephemeral local storage usage exceeds the total limit of containers 1Gi. ",
                ),
                "evicted_ephemeral_storage",
                "evicted-ephemeral-storage",
                &[
                    "kubectl set resources deployment/web -n shop -c web --requests=ephemeral-storage=",
                ],
            ),
            c(
                "a deadline-exceeded CronJob run gets twice its run time",
                fixture!("deadline-exceeded"),
                "deadline_exceeded",
                "deadline-exceeded",
                &[
                    "kubectl get cronjob/export -n batch -o jsonpath='{.spec.jobTemplate.spec.activeDeadlineSeconds}'",
                    r#"kubectl patch cronjob/export -n batch --type=json -p='[{"op":"add","path":"/spec/jobTemplate/spec/activeDeadlineSeconds","value":1260}]'"#,
                ],
            ),
            c(
                "an unresolvable host in the termination message is a DNS failure",
                crashloop(
                    1,
                    "Error",
                    "failed to connect: dial tcp: lookup postgres.shop.svc.cluster.local on 10.96.0.10:53: no such host",
                ),
                "dns_resolution_failed",
                "dns-resolution-error",
                &["-- nslookup postgres.shop.svc.cluster.local"],
            ),
            Case {
                logs: &[
                    "2024/05/14 09:58:09 store: dial tcp 10.0.3.7:5432: connect: connection refused",
                ],
                ..c(
                    "a refused connection in the logs names the dependency",
                    crashloop(1, "Error", ""),
                    "connection_refused",
                    "log-connection-refused",
                    &["kubectl get svc,pods -n shop -o wide"],
                )
            },
            Case {
                logs: &["level=error msg=\"upstream answered 503 Service Unavailable\""],
                ..c(
                    "a dependency answering 503 counts as a refused dependency",
                    crashloop(1, "Error", ""),
                    "connection_refused",
                    "service-unavailable",
                    &["kubectl get endpoints -n shop"],
                )
            },
            c(
                "permission denied on a file is a permissions problem",
                crashloop(1, "Error", "open /data/cache.db: permission denied"),
                "permission_denied",
                "permission-denied",
                &["--copy-to=web-7c9d8f6b5-q2w3e-debug --container=web -- id"],
            ),
            c(
                "runAsNonRoot with a root image is a permissions problem",
                waiting(
                    "CreateContainerConfigError",
                    "container has runAsNonRoot and image will run as root (pod: \"web-7c9d8f6b5-q2w3e_shop(1d5c7a52)\", container: web)",
                ),
                "permission_denied",
                "run-as-non-root",
                &["/spec/template/spec/containers/1/securityContext/runAsUser"],
            ),
            c(
                "a port already bound is port in use",
                crashloop(1, "Error", "listen tcp :8080: bind: address already in use"),
                "port_in_use",
                "host-port-conflict",
                &["kubectl get pod web-7c9d8f6b5-q2w3e -n shop -o jsonpath="],
            ),
            Case {
                logs: &[
                    "Get \"https://payments.example.com/v1/charge\": x509: certificate has expired or is not yet valid",
                ],
                ..c(
                    "an expired certificate in the logs is a TLS error",
                    crashloop(1, "Error", ""),
                    "tls_certificate_error",
                    "x509-certificate-error",
                    &["kubectl logs web-7c9d8f6b5-q2w3e -n shop -c web --previous"],
                )
            },
            c(
                "no space left on device is a full disk",
                crashloop(
                    1,
                    "Error",
                    "write /var/lib/app/wal/000001: no space left on device",
                ),
                "disk_full",
                "disk-full",
                &["--copy-to=web-7c9d8f6b5-q2w3e-debug --container=web -- df -h"],
            ),
            c(
                "a pod stuck creating with no events is unknown but still actionable",
                waiting("ContainerCreating", ""),
                "unknown",
                "unknown",
                &["kubectl describe pod web-7c9d8f6b5-q2w3e -n shop"],
            ),
        ]
    }

    #[test]
    fn every_case_gets_its_cause_with_commands_naming_the_real_objects() {
        for case in cases() {
            let (f, d) = run(&case.pod, case.hms, case.events, case.logs);
            let ctx = format!("{}: {d:#?}", case.name);
            assert_eq!((d.cause.as_str(), d.rule), (case.cause, case.rule), "{ctx}");
            assert!((0.0..=1.0).contains(&d.confidence), "{ctx}");
            assert!(!d.evidence.is_empty(), "{ctx}");
            assert!(
                d.evidence.iter().all(|e| e.len() <= MAX_QUOTE + 40),
                "{ctx}"
            );
            // Never an unfilled template, and never an env value.
            let all = format!("{} {} {}", d.summary, d.fix.text, d.fix.commands.join("\n"));
            assert!(!all.contains("{{") && !all.contains("}}}}}"), "{ctx}");
            assert!(
                !all.contains("<ns>") && !all.contains("<container>") && !all.contains("<ref>"),
                "{ctx}"
            );
            assert!(!format!("{d:?}").contains("s3cret"), "{ctx}");
            let ns = format!("-n {}", f.namespace);
            assert!(
                d.fix.commands.iter().all(|c| !c.starts_with("kubectl")
                    || c.contains(&ns)
                    || c.contains(" -A")
                    || c.contains("nodes")
                    || c.contains("node/")
                    || c.contains("node ")
                    || c.contains("storageclass")
                    || c.contains("volumeattachments")
                    || c.contains("kube-system")),
                "{ctx}"
            );
            assert!(d.fix.commands.iter().any(|c| c.contains(&ns)), "{ctx}");
            if let Some(c) = &f.container {
                assert!(d.summary.contains(c.as_str()), "{ctx}");
            }
            for want in case.commands {
                assert!(
                    d.fix.commands.iter().any(|c| c.contains(want)),
                    "{ctx}\nwanted: {want}"
                );
            }
        }
    }

    #[test]
    fn an_oom_kill_doubles_a_256mi_limit_and_says_what_it_was() {
        let (_, d) = run(&crashloop(137, "OOMKilled", ""), "10:00:00", &[], &[]);
        assert_eq!(d.cause, "oom_killed");
        assert_eq!(d.confidence, 0.97);
        assert_eq!(
            d.fix.commands[0],
            "kubectl set resources deployment/web -n shop -c web --limits=memory=512Mi"
        );
        assert!(
            d.summary.contains("its 256Mi memory limit"),
            "{}",
            d.summary
        );
        assert!(d.fix.text.contains("from 256Mi to 512Mi"), "{}", d.fix.text);
        assert!(
            d.evidence
                .contains(&"exit code 137, reason OOMKilled".to_owned()),
            "{:?}",
            d.evidence
        );
        assert!(
            d.evidence
                .contains(&"memory limit 256Mi, request 128Mi".to_owned()),
            "{:?}",
            d.evidence
        );
    }

    fn in_rollout_of(json: &str, rollout: &Rollout) -> Diagnosis {
        let pod = record(json);
        let now = parse_rfc3339("2024-05-14T10:00:00Z").unwrap();
        let finding = classify(&pod, &NothingKnown, now, &Thresholds::default()).remove(0);
        diagnose(&Context {
            finding: &finding,
            pod: &pod,
            workload: &workload_of(&pod),
            events: &[],
            logs: &[],
            rollout,
        })
    }

    #[test]
    fn an_old_revision_gets_no_template_change_while_a_newer_one_fails() {
        let json = crashloop(137, "OOMKilled", "");
        let d = in_rollout_of(
            &json,
            &Rollout::Superseded {
                newer: "web-8d5f7c6b9".into(),
                newer_failing: Some(F::ImagePullBackOff),
            },
        );
        assert_eq!(d.cause, "oom_killed");
        assert!(
            d.fix.commands.iter().all(|c| !edits_template(c)),
            "{:#?}",
            d.fix.commands
        );
        assert!(
            d.fix.text.starts_with("These pods belong to the old revision web-7c9d8f6b5; deployment/web is rolling out web-8d5f7c6b9, which fails too (ImagePullBackOff): fix that first."),
            "{}",
            d.fix.text
        );
        assert!(
            d.fix
                .commands
                .contains(&"kubectl rollout status deployment/web -n shop".to_string())
        );
        // Steady, the same pod gets its template change.
        let steady = in_rollout_of(&json, &Rollout::Steady);
        assert!(steady.fix.commands[0].starts_with("kubectl set resources deployment/web"));
    }

    #[test]
    fn the_newest_revision_of_a_rollout_gone_wrong_can_be_undone() {
        let d = in_rollout_of(
            &fixture!("imagepullbackoff"),
            &Rollout::Newest {
                older: "web-7c9d8f6b5".into(),
            },
        );
        let undo = "kubectl rollout undo deployment/web -n shop".to_string();
        assert_eq!(
            d.fix.commands.iter().filter(|c| **c == undo).count(),
            1,
            "{:#?}",
            d.fix.commands
        );
        assert!(
            d.fix
                .text
                .contains("previous revision web-7c9d8f6b5 still runs"),
            "{}",
            d.fix.text
        );
        // The rule's own fix stays: the image is what to correct.
        assert!(
            d.fix
                .commands
                .iter()
                .any(|c| c.starts_with("kubectl set image deployment/web"))
        );
    }

    #[test]
    fn an_oom_kill_without_a_limit_suggests_one_from_the_request() {
        let mut pod = record(&crashloop(137, "OOMKilled", ""));
        let mut containers = pod.containers.to_vec();
        containers[1].memory_limit = None;
        pod.containers = containers.into_boxed_slice();
        let finding = classify(&pod, &NothingKnown, 0, &Thresholds::default()).remove(0);
        let workload = workload_of(&pod);
        let d = diagnose(&Context {
            finding: &finding,
            pod: &pod,
            workload: &workload,
            events: &[],
            logs: &[],
            rollout: &crate::model::Rollout::Steady,
        });
        assert_eq!(
            d.fix.commands[0],
            "kubectl set resources deployment/web -n shop -c web --limits=memory=256Mi"
        );
        assert!(d.fix.text.contains("no memory limit"), "{}", d.fix.text);
        assert!(
            d.summary.contains("no memory limit is set"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn the_probe_timeout_evidence_quotes_the_event_and_the_probe() {
        let ev = [
            "Warning Unhealthy: Liveness probe failed: Get \"http://10.1.2.3:8080/healthz\": context deadline exceeded",
        ];
        let (_, d) = run(&restarted(), "10:00:00", &ev, &[]);
        assert_eq!(d.rule, "liveness-probe-timeout");
        assert!(
            d.evidence
                .iter()
                .any(|e| e.starts_with("event: Warning Unhealthy: Liveness probe failed")),
            "{:?}",
            d.evidence
        );
        assert!(
            d.evidence.contains(
                &"livenessProbe: HTTP GET :8080/healthz, timeout 1s, every 10s, 3 failures allowed"
                    .to_owned()
            ),
            "{:?}",
            d.evidence
        );
        assert!(
            d.fix.text.contains("timeoutSeconds 1 → 2"),
            "{}",
            d.fix.text
        );
    }

    #[test]
    fn log_causes_beat_the_probe_failures_they_provoke() {
        // The readiness event also says "connection refused"; the app's own log is the cause.
        let ev = [
            "Warning Unhealthy: Readiness probe failed: Get \"http://10.1.2.3:8080/ready\": dial tcp 10.1.2.3:8080: connect: connection refused",
        ];
        let (_, d) = run(
            &unready(),
            "10:00:00",
            &ev,
            &["dial tcp: lookup redis on 10.96.0.10:53: no such host"],
        );
        assert_eq!(d.cause, "dns_resolution_failed");
        assert!(d.summary.contains("cannot resolve redis"), "{}", d.summary);
        // Without the log, the probe event decides.
        let (_, d) = run(&unready(), "10:00:00", &ev, &[]);
        assert_eq!(d.rule, "readiness-probe-failure");
    }

    #[test]
    fn mutating_fixes_for_jobs_and_bare_pods_say_how_to_apply_them() {
        let json = crashloop(137, "OOMKilled", "").replace(
            r#""ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7c9d8f6b5","uid":"0b7c1e2d","controller":true,"blockOwnerDeletion":true}]"#,
            r#""ownerReferences":[]"#,
        );
        let (_, d) = run(&json, "10:00:00", &[], &[]);
        assert!(
            d.fix.commands[0].contains("pod/web-7c9d8f6b5-q2w3e"),
            "{:?}",
            d.fix.commands
        );
        assert!(d.fix.text.contains("bare pod"), "{}", d.fix.text);
        // The API server refuses a change to a running pod's resources: the command changes
        // a copy and recreates the pod.
        let recreate = |target: &str, cmd: &str| {
            cmd.starts_with(&format!("kubectl get {target} -n shop -o json | kubectl set resources -c web --limits=memory="))
                && cmd.ends_with(" --local -f - -o json | kubectl replace --force -f -")
        };
        assert!(
            recreate("pod/web-7c9d8f6b5-q2w3e", &d.fix.commands[0]),
            "{:?}",
            d.fix.commands
        );
        let job = |exit: i32, reason: &str| {
            crashloop(exit, reason, "").replace(
                r#""kind":"ReplicaSet","name":"web-7c9d8f6b5""#,
                r#""kind":"Job","name":"migrate""#,
            )
        };
        let (_, d) = run(&job(137, "OOMKilled"), "10:00:00", &[], &[]);
        assert!(
            d.fix
                .text
                .contains("kubectl get job/migrate -n shop -o yaml"),
            "{}",
            d.fix.text
        );
        assert!(
            recreate("job/migrate", &d.fix.commands[0]),
            "{:?}",
            d.fix.commands
        );
        // A Deployment's template changes in place.
        let (_, d) = run(&crashloop(137, "OOMKilled", ""), "10:00:00", &[], &[]);
        assert!(
            d.fix.commands[0].starts_with(
                "kubectl set resources deployment/web -n shop -c web --limits=memory="
            ),
            "{:?}",
            d.fix.commands
        );
        // Only workloads with a rollout get `kubectl rollout` commands.
        for exit in [1, 139] {
            let (_, d) = run(&job(exit, "Error"), "10:00:00", &[], &[]);
            assert!(
                d.fix
                    .commands
                    .iter()
                    .all(|c| !c.starts_with("kubectl rollout")),
                "{:?}",
                d.fix.commands
            );
        }
        let (_, d) = run(&crashloop(139, "Error", ""), "10:00:00", &[], &[]);
        assert!(
            d.fix
                .commands
                .iter()
                .any(|c| c.starts_with("kubectl rollout history deployment/web")),
            "{:?}",
            d.fix.commands
        );
    }

    #[test]
    fn long_evidence_lines_keep_the_matched_words_in_view() {
        let ev = [
            "Warning Failed: Failed to pull image \"registry.example.com/shop/web:1.4.4\": rpc error: code = Unknown desc = failed to pull and unpack image \"registry.example.com/shop/web:1.4.4\": failed to resolve reference \"registry.example.com/shop/web:1.4.4\": failed to do request: Head \"https://registry.example.com/v2/shop/web/manifests/1.4.4\": dial tcp: lookup registry.example.com on 10.96.0.10:53: no such host",
        ];
        let (_, d) = run(&fixture!("imagepullbackoff"), "10:00:00", &ev, &[]);
        let quoted = d
            .evidence
            .iter()
            .find(|e| e.starts_with("event: "))
            .unwrap();
        assert!(
            quoted.contains("dial tcp: lookup registry.example.com"),
            "{quoted}"
        );
        assert!(quoted.len() <= MAX_QUOTE + 20, "{quoted}");
        // A multi-line panic is summarised by its first line.
        let (_, d) = run(&fixture!("crashloop-error"), "10:00:00", &[], &[]);
        assert!(!d.summary.contains('\n'), "{}", d.summary);
        assert!(
            d.summary
                .ends_with("panic: open /etc/api/config.yaml: no such file or directory"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn a_system_oom_on_the_node_is_told_apart_from_a_container_over_its_limit() {
        let oom = fixture!("crashloop-oom-lastState");
        let (_, own) = run(&oom, "10:00:00", &[], &[]);
        assert_eq!(own.cause, "oom_killed");
        let (_, sys) = run(
            &oom,
            "10:00:00",
            &[
                "Warning SystemOOM (node worker-1): System OOM encountered, victim process: web, pid: 4242",
            ],
            &[],
        );
        assert_eq!(sys.cause, "system_oom");
        assert_eq!(sys.rule, "system-oom");
        assert!(sys.summary.contains("ran out of memory"), "{}", sys.summary);
        assert!(
            sys.fix
                .commands
                .iter()
                .any(|c| c.starts_with("kubectl describe node ")),
            "{:?}",
            sys.fix.commands
        );
        assert!(
            !sys.fix
                .commands
                .iter()
                .any(|c| c.contains("--limits=memory")),
            "raising the limit is not the fix: {:?}",
            sys.fix.commands
        );
    }

    #[test]
    fn a_diagnosis_serialises_to_json() {
        let (_, d) = run(&fixture!("crashloop-oom-lastState"), "10:00:00", &[], &[]);
        let v: serde_json::Value = serde_json::to_value(&d).unwrap();
        assert_eq!(v["cause"], "oom_killed");
        assert_eq!(v["rule"], "oomkilled-container");
        assert!(v["fix"]["commands"].is_array());
    }

    /// Every rule's commands, for a pod of every workload kind (restarted or
    /// never restarted): kubectl only, `rollout` only where there is one, no
    /// in-place change to what the API server refuses to change, and no
    /// `--previous` for a container that never restarted.
    #[test]
    fn every_rules_commands_are_valid_for_every_workload_kind() {
        let kinds = [
            ("Deployment", "web"),
            ("StatefulSet", "db"),
            ("DaemonSet", "agent"),
            ("Job", "migrate"),
            ("CronJob", "nightly"),
            ("Pod", "web-7c9d8f6b5-q2w3e"),
        ];
        for restarts in [0, 6] {
            let mut pod = record(&crashloop(1, "Error", ""));
            for c in &mut pod.containers {
                c.restart_count = restarts;
            }
            let now = parse_rfc3339("2024-05-14T10:00:00Z").unwrap();
            let finding = classify(&pod, &NothingKnown, now, &Thresholds::default()).remove(0);
            for (kind, name) in kinds {
                let workload = crate::model::Workload {
                    kind: kind.into(),
                    name: name.into(),
                };
                let ctx = Context {
                    finding: &finding,
                    pod: &pod,
                    workload: &workload,
                    events: &[],
                    logs: &[],
                    rollout: &crate::model::Rollout::Steady,
                };
                let vars = Vars {
                    ctx: &ctx,
                    container: subject(&ctx),
                    probe: None,
                    texts: Vec::new(),
                };
                let target = format!("{}/{name} ", kind.to_ascii_lowercase());
                for rule in RULES {
                    for cmd in commands(rule, kind, &vars) {
                        let at =
                            format!("{} for a {kind} with {restarts} restarts: {cmd}", rule.id);
                        assert!(cmd.starts_with("kubectl "), "{at}");
                        let rolls = matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet");
                        assert!(rolls || !cmd.contains("kubectl rollout"), "{at}");
                        if restarts == 0 {
                            assert!(!cmd.contains("--previous"), "{at}");
                        }
                        // A Job's template and a bare pod's spec (but its image)
                        // change only through a recreated copy.
                        let in_place =
                            cmd.starts_with("kubectl set ") || cmd.starts_with("kubectl patch ");
                        if rule.mutates && in_place && cmd.contains(&target) {
                            let allowed = match kind {
                                "Job" => false,
                                "Pod" => cmd.starts_with("kubectl set image "),
                                _ => true,
                            };
                            assert!(allowed, "{at}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_cause_is_produced_by_a_rule_and_every_rule_is_well_formed() {
        for cause in Cause::ALL.into_iter().filter(|c| !c.is_node()) {
            assert!(
                RULES.iter().any(|r| r.cause == cause)
                    || super::super::log_rules::LOG_RULES
                        .iter()
                        .any(|r| r.cause == cause),
                "no rule for {cause}"
            );
        }
        let mut ids = std::collections::HashSet::new();
        for r in RULES {
            assert!(ids.insert(r.id), "duplicate id {}", r.id);
            assert!((0.0..=1.0).contains(&r.confidence), "{}", r.id);
            assert!(
                !r.summary.is_empty() && !r.fix.is_empty() && !r.commands.is_empty(),
                "{}",
                r.id
            );
            for p in r.patterns.iter().flat_map(|g| g.iter()) {
                assert_eq!(
                    *p,
                    p.to_ascii_lowercase(),
                    "{}: patterns are matched lowercased",
                    r.id
                );
            }
        }
        // The original's 17 `rules.json` rules keep their ids.
        for id in [
            "image-pull-backoff",
            "crashloop-generic",
            "oomkilled-container",
            "dns-resolution-error",
            "liveness-probe-failure",
            "readiness-probe-failure",
            "readiness-probe-http-error",
            "permission-denied",
            "image-not-found",
            "host-port-conflict",
            "failed-to-start-container",
            "x509-certificate-error",
            "service-unavailable",
            "panic-stack-trace",
            "segmentation-fault",
            "disk-full",
            "init-container-failed",
        ] {
            assert!(ids.contains(id), "{id}");
        }
        // The last rule catches everything, so `diagnose` always has an answer.
        let last = &RULES[RULES.len() - 1];
        assert!(last.kinds.is_empty() && last.reasons.is_empty() && last.patterns.is_empty());
        assert!(matches!(last.exit, Exit::Any) && last.init.is_none() && !last.needs_probe);
    }
}
