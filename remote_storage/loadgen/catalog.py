"""Who the simulated series are: scrape targets, their metric names and label values.

The series are shaped like what a Prometheus scraping a Kubernetes fleet
holds: targets of four kinds (node_exporter, kube-state-metrics, the
kubelet with cAdvisor, and applications), each exposing
:data:`SERIES_PER_TARGET` metrics, so 100,000 series come from 1,000
targets. Label cardinalities follow from that: a few hundred metric names,
one ``instance`` and ``pod`` per target, a dozen ``job`` values, 18
namespaces, 6 clusters in 3 regions, 9 zones.

Series ``index`` belongs to target ``index // SERIES_PER_TARGET`` and is
that target's metric number ``index % SERIES_PER_TARGET``. A series
replaced by churn gets a new *generation*: its target's ``instance`` (the
pod's address) and ``pod`` change, as when Kubernetes replaces a pod, and
the label set is new. Everything is a pure function of (seed, index,
generation), so any process can rebuild any series.

>>> catalog = Catalog(label_count=4)
>>> dict(catalog.labels(0, generation=0))
{'__name__': 'node_load1', 'instance': '10.0.0.0:9100', 'job': 'node-exporter', 'namespace': 'monitoring'}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from remote_storage.storage import MetricType

__all__ = ["LABEL_NAMES", "MIN_LABELS", "SERIES_PER_TARGET", "Catalog", "Metric", "mix64"]

SERIES_PER_TARGET = 100
#: Label names in the order ``--labels`` takes them (``__name__`` first, always).
LABEL_NAMES = (
    "__name__",
    "job",
    "instance",
    "namespace",
    "pod",
    "container",
    "cluster",
    "region",
    "zone",
    "service",
    "node",
    "endpoint",
    "app",
    "version",
    "team",
    "env",
)
#: ``__name__``, ``job`` and ``instance``: what every scraped series carries, and what keeps them unique.
MIN_LABELS = 3
MAX_LABELS = 64

_MASK64 = (1 << 64) - 1


def mix64(*parts: int) -> int:
    """A well-mixed 64-bit hash of integers (splitmix64 steps), stable across processes."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = (state + (part & _MASK64) + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric family a target exposes: name, type (counter or gauge) and help text."""

    name: str
    type: MetricType
    help: str


def _metrics(names: list[str]) -> tuple[Metric, ...]:
    """The first :data:`SERIES_PER_TARGET` names, typed by Prometheus naming conventions."""
    if len(set(names)) != len(names) or len(names) < SERIES_PER_TARGET:
        raise AssertionError(f"a target kind needs {SERIES_PER_TARGET} distinct metric names")
    result = []
    for name in names[:SERIES_PER_TARGET]:
        counter = name.endswith(("_total", "_count", "_sum"))
        kind = MetricType.COUNTER if counter else MetricType.GAUGE
        result.append(Metric(name, kind, name.replace("_", " ").capitalize() + "."))
    return tuple(result)


_PROCESS = [
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_start_time_seconds",
    "process_network_receive_bytes_total",
    "process_network_transmit_bytes_total",
]
_GO = [
    "go_goroutines",
    "go_threads",
    "go_gc_duration_seconds_sum",
    "go_gc_duration_seconds_count",
    "go_memstats_alloc_bytes",
    "go_memstats_alloc_bytes_total",
    "go_memstats_sys_bytes",
    "go_memstats_lookups_total",
    "go_memstats_mallocs_total",
    "go_memstats_frees_total",
    "go_memstats_heap_alloc_bytes",
    "go_memstats_heap_sys_bytes",
    "go_memstats_heap_idle_bytes",
    "go_memstats_heap_inuse_bytes",
    "go_memstats_heap_released_bytes",
    "go_memstats_heap_objects",
    "go_memstats_stack_inuse_bytes",
    "go_memstats_stack_sys_bytes",
    "go_memstats_mspan_inuse_bytes",
    "go_memstats_mspan_sys_bytes",
    "go_memstats_mcache_inuse_bytes",
    "go_memstats_mcache_sys_bytes",
    "go_memstats_buck_hash_sys_bytes",
    "go_memstats_gc_sys_bytes",
    "go_memstats_other_sys_bytes",
    "go_memstats_next_gc_bytes",
    "go_memstats_last_gc_time_seconds",
]
_MEMINFO = [
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SwapCached",
    "Active",
    "Inactive",
    "Active_anon",
    "Inactive_anon",
    "Active_file",
    "Inactive_file",
    "Unevictable",
    "Mlocked",
    "SwapTotal",
    "SwapFree",
    "Dirty",
    "Writeback",
    "AnonPages",
    "Mapped",
    "Shmem",
    "KReclaimable",
    "Slab",
    "SReclaimable",
    "SUnreclaim",
    "KernelStack",
    "PageTables",
    "CommitLimit",
    "Committed_AS",
    "VmallocTotal",
    "VmallocUsed",
    "HugePages_Total",
    "HugePages_Free",
    "Hugepagesize",
]

_NODE_EXPORTER = _metrics(
    ["node_load1", "node_load5", "node_load15", "node_boot_time_seconds", "node_time_seconds"]
    + ["node_procs_running", "node_procs_blocked", "node_entropy_available_bits"]
    + ["node_filefd_allocated", "node_filefd_maximum", "node_nf_conntrack_entries"]
    + ["node_cpu_seconds_total", "node_cpu_guest_seconds_total", "node_context_switches_total"]
    + ["node_intr_total", "node_forks_total"]
    + [f"node_memory_{field}_bytes" for field in _MEMINFO]
    + [
        f"node_network_{direction}_{what}_total"
        for direction in ("receive", "transmit")
        for what in ("bytes", "packets", "errs", "drop", "fifo", "compressed")
    ]
    + [
        f"node_disk_{what}_total"
        for what in (
            "reads_completed",
            "reads_merged",
            "read_bytes",
            "read_time_seconds",
            "writes_completed",
            "writes_merged",
            "written_bytes",
            "write_time_seconds",
            "io_time_seconds",
            "io_time_weighted_seconds",
            "discards_completed",
        )
    ]
    + [
        f"node_filesystem_{what}"
        for what in ("avail_bytes", "free_bytes", "size_bytes", "files", "files_free")
    ]
    + ["node_network_up", "node_network_mtu_bytes", "node_network_speed_bytes", "node_network_carrier"]
    + ["node_sockstat_sockets_used", "node_sockstat_TCP_inuse", "node_sockstat_TCP_tw"]
    + ["node_sockstat_UDP_inuse", "node_timex_offset_seconds", "node_timex_sync_status"]
    + [f"node_vmstat_{what}" for what in ("pgfault", "pgmajfault", "pgpgin", "pgpgout", "oom_kill")]
    + _PROCESS
)

_KUBE_OBJECTS = ("deployment", "statefulset", "daemonset", "replicaset", "job", "cronjob")
_KUBE_STATE_METRICS = _metrics(
    [
        f"kube_pod_{what}"
        for what in (
            "info",
            "status_phase",
            "status_ready",
            "status_scheduled",
            "start_time",
            "created",
            "owner",
            "labels",
            "container_info",
            "container_status_ready",
            "container_status_running",
            "container_status_waiting",
            "container_status_terminated",
            "container_status_restarts_total",
            "container_resource_requests",
            "container_resource_limits",
            "init_container_info",
            "restart_policy",
        )
    ]
    + [
        f"kube_{kind}_{what}"
        for kind in _KUBE_OBJECTS
        for what in ("created", "labels", "annotations", "metadata_generation", "status_observed_generation")
    ]
    + [
        f"kube_node_{what}"
        for what in (
            "info",
            "labels",
            "created",
            "spec_unschedulable",
            "spec_taint",
            "status_condition",
            "status_capacity",
            "status_allocatable",
        )
    ]
    + [
        f"kube_{kind}_{what}"
        for kind in ("service", "endpoint", "configmap", "secret", "ingress", "namespace")
        for what in ("info", "created", "labels")
    ]
    + [
        f"kube_persistentvolumeclaim_{what}"
        for what in ("info", "status_phase", "resource_requests_storage_bytes")
    ]
    + [f"kube_persistentvolume_{what}" for what in ("info", "status_phase", "capacity_bytes")]
    + [f"kube_horizontalpodautoscaler_{what}" for what in ("info", "spec_min_replicas", "spec_max_replicas")]
    + ["kube_horizontalpodautoscaler_status_current_replicas", "kube_resourcequota", "kube_limitrange"]
    + [f"kube_state_metrics_{what}" for what in ("list_total", "watch_total", "shard_ordinal")]
    + ["kube_lease_owner", "kube_lease_renew_time", "kube_poddisruptionbudget_status_current_healthy"]
    + ["kube_poddisruptionbudget_status_desired_healthy"]
    + _PROCESS
)

_KUBELET = _metrics(
    [
        f"container_{what}"
        for what in (
            "cpu_usage_seconds_total",
            "cpu_user_seconds_total",
            "cpu_system_seconds_total",
            "cpu_cfs_periods_total",
            "cpu_cfs_throttled_periods_total",
            "cpu_cfs_throttled_seconds_total",
            "memory_usage_bytes",
            "memory_working_set_bytes",
            "memory_rss",
            "memory_cache",
            "memory_swap",
            "memory_failcnt",
            "memory_max_usage_bytes",
            "memory_mapped_file",
            "fs_reads_bytes_total",
            "fs_writes_bytes_total",
            "fs_reads_total",
            "fs_writes_total",
            "fs_usage_bytes",
            "fs_limit_bytes",
            "fs_inodes_free",
            "fs_inodes_total",
            "network_receive_bytes_total",
            "network_transmit_bytes_total",
            "network_receive_packets_total",
            "network_transmit_packets_total",
            "network_receive_errors_total",
            "network_transmit_errors_total",
            "network_receive_packets_dropped_total",
            "network_transmit_packets_dropped_total",
            "last_seen",
            "start_time_seconds",
            "spec_cpu_period",
            "spec_cpu_quota",
            "spec_cpu_shares",
            "spec_memory_limit_bytes",
            "spec_memory_reservation_limit_bytes",
            "tasks_state",
            "threads",
            "threads_max",
            "processes",
            "sockets",
            "file_descriptors",
            "oom_events_total",
        )
    ]
    + [
        f"kubelet_{what}"
        for what in (
            "running_pods",
            "running_containers",
            "volume_stats_available_bytes",
            "volume_stats_capacity_bytes",
            "volume_stats_used_bytes",
            "volume_stats_inodes",
            "volume_stats_inodes_used",
            "pleg_relist_duration_seconds_sum",
            "pleg_relist_duration_seconds_count",
            "runtime_operations_total",
            "runtime_operations_errors_total",
            "runtime_operations_duration_seconds_sum",
            "runtime_operations_duration_seconds_count",
            "pod_start_duration_seconds_sum",
            "pod_start_duration_seconds_count",
            "http_requests_total",
            "evictions",
            "certificate_manager_client_ttl_seconds",
        )
    ]
    + [f"machine_{what}" for what in ("cpu_cores", "cpu_physical_cores", "cpu_sockets", "memory_bytes")]
    + [f"rest_client_{what}" for what in ("requests_total", "request_duration_seconds_sum")]
    + ["rest_client_request_duration_seconds_count", "storage_operation_duration_seconds_count"]
    + _PROCESS
    + _GO
)

_APPLICATION = _metrics(
    [
        f"http_{what}"
        for what in (
            "requests_total",
            "requests_in_flight",
            "request_duration_seconds_sum",
            "request_duration_seconds_count",
            "request_size_bytes_sum",
            "request_size_bytes_count",
            "response_size_bytes_sum",
            "response_size_bytes_count",
            "client_requests_total",
            "client_request_duration_seconds_sum",
            "client_request_duration_seconds_count",
        )
    ]
    + [
        f"grpc_{side}_{what}"
        for side in ("server", "client")
        for what in (
            "started_total",
            "handled_total",
            "msg_received_total",
            "msg_sent_total",
            "handling_seconds_sum",
            "handling_seconds_count",
        )
    ]
    + [
        f"db_{what}"
        for what in (
            "queries_total",
            "query_errors_total",
            "query_duration_seconds_sum",
            "query_duration_seconds_count",
            "connections_open",
            "connections_idle",
            "connections_in_use",
            "connections_max",
            "connections_wait_total",
            "connections_wait_duration_seconds_total",
        )
    ]
    + [f"cache_{what}" for what in ("hits_total", "misses_total", "evictions_total", "items", "size_bytes")]
    + [
        f"queue_{what}"
        for what in ("depth", "messages_processed_total", "messages_failed_total", "lag_seconds")
    ]
    + [f"jobs_{what}" for what in ("started_total", "completed_total", "failed_total", "running")]
    + ["app_build_info", "app_uptime_seconds", "app_config_last_reload_successful"]
    + ["app_config_last_reload_success_timestamp_seconds", "app_feature_flags_enabled"]
    + [f"kafka_consumer_{what}" for what in ("records_consumed_total", "fetch_errors_total", "lag")]
    + [f"kafka_producer_{what}" for what in ("records_sent_total", "record_errors_total", "batch_size_avg")]
    + [f"redis_{what}" for what in ("commands_total", "command_errors_total", "pool_connections")]
    + [f"circuit_breaker_{what}" for what in ("state", "calls_total", "rejected_total")]
    + ["rate_limiter_rejected_total", "outbound_requests_total", "outbound_request_errors_total"]
    + ["tls_certificate_expiry_timestamp_seconds", "http_server_active_connections"]
    + _PROCESS
    + _GO
)


@dataclass(frozen=True, slots=True)
class _Kind:
    """What a target of one kind looks like; ``job`` and friends may depend on the target number."""

    metrics: tuple[Metric, ...]
    job: Callable[[int], str]
    port: int
    namespace: Callable[[int], str]
    container: Callable[[int], str]
    endpoint: str


_APPS = (
    "checkout",
    "payments",
    "cart",
    "frontend",
    "search",
    "auth",
    "orders",
    "inventory",
    "shipping",
    "recommendations",
    "notifications",
    "gateway",
)
_APP_NAMESPACES = (
    "shop",
    "payments",
    "platform",
    "search",
    "identity",
    "logistics",
    "growth",
    "edge",
    "data",
    "ml",
    "billing",
    "support",
    "marketing",
    "internal-tools",
    "sandbox",
    "partners",
)
_NODE = _Kind(
    _NODE_EXPORTER,
    lambda t: "node-exporter",
    9100,
    lambda t: "monitoring",
    lambda t: "node-exporter",
    "metrics",
)
_KSM = _Kind(
    _KUBE_STATE_METRICS,
    lambda t: "kube-state-metrics",
    8080,
    lambda t: "monitoring",
    lambda t: "kube-state-metrics",
    "http-metrics",
)
_CADVISOR = _Kind(
    _KUBELET, lambda t: "kubelet", 10250, lambda t: "kube-system", lambda t: "kubelet", "https-metrics"
)
_APP = _Kind(
    _APPLICATION,
    lambda t: _APPS[(t // 10) % len(_APPS)],
    8080,
    lambda t: _APP_NAMESPACES[(t // 10) % len(_APP_NAMESPACES)],
    lambda t: ("app", "server", "worker")[(t // 120) % 3],
    "http",
)
# Four applications, three node exporters, two kubelets and one kube-state-metrics in every ten targets.
_KIND_CYCLE = (_NODE, _APP, _CADVISOR, _APP, _NODE, _APP, _KSM, _APP, _NODE, _CADVISOR)
_REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-1")
_CLUSTERS = ("prod-eu-1", "staging-eu-1", "prod-us-1", "staging-us-1", "prod-ap-1", "staging-ap-1")
_TEAMS = ("core", "checkout", "platform", "data", "search", "identity", "sre", "growth")
# Kubernetes' alphabet for generated name suffixes (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _suffix(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_SUFFIX_ALPHABET))
        chars.append(_SUFFIX_ALPHABET[digit])
    return "".join(chars)


class Catalog:
    """Label sets and metric families of the simulated series.

    ``label_count`` counts ``__name__``; the first names of
    :data:`LABEL_NAMES` are used, then ``label_16``, ``label_17``, ... with
    ten values each. ``seed`` shifts every target's identity, so generators
    started with different seeds write different series.
    """

    def __init__(self, label_count: int = 10, seed: int = 0, targets: int = 1) -> None:
        if not MIN_LABELS <= label_count <= MAX_LABELS:
            raise ValueError(f"label_count must be between {MIN_LABELS} and {MAX_LABELS}, got {label_count}")
        self.label_count = label_count
        self.seed = seed
        #: targets of the first generation; later generations number theirs after these
        self.targets = max(1, targets)
        self._target_cache: dict[tuple[int, int], tuple[tuple[str, str], ...]] = {}

    def metric(self, index: int) -> Metric:
        """The metric family of series ``index``."""
        target, number = divmod(index, SERIES_PER_TARGET)
        return _KIND_CYCLE[target % len(_KIND_CYCLE)].metrics[number]

    def labels(self, index: int, generation: int) -> tuple[tuple[str, str], ...]:
        """The sorted label pairs of series ``index`` in its ``generation``."""
        target, number = divmod(index, SERIES_PER_TARGET)
        name = _KIND_CYCLE[target % len(_KIND_CYCLE)].metrics[number].name
        # Every other label name sorts after "__name__": they start with a lowercase letter.
        return (("__name__", name), *self.target_labels(target, generation))

    def target_labels(self, target: int, generation: int) -> tuple[tuple[str, str], ...]:
        """The sorted labels (all but ``__name__``) shared by the series of ``target``."""
        key = (target, generation)
        cached = self._target_cache.get(key)
        if cached is None:
            if len(self._target_cache) >= 65_536:
                self._target_cache.clear()
            cached = self._target_cache[key] = self._build_target_labels(target, generation)
        return cached

    def _build_target_labels(self, t: int, generation: int) -> tuple[tuple[str, str], ...]:
        kind = _KIND_CYCLE[t % len(_KIND_CYCLE)]
        # One number per pod incarnation, unique across generations and seeds.
        uid = generation * self.targets + t + self.seed * 1_000_003
        address = f"10.{(uid >> 16) & 255}.{(uid >> 8) & 255}.{uid & 255}"
        job = kind.job(t)
        cluster_number = (t // 7) % len(_CLUSTERS)
        region = _REGIONS[cluster_number // 2]
        pod_hash = _suffix(mix64(self.seed, uid) >> 20, 5)
        if kind is _NODE or kind is _CADVISOR:
            pod = f"{job}-{pod_hash}"
        else:
            pod = f"{job}-{_suffix(mix64(self.seed, t, 1) >> 20, 10)}-{pod_hash}"
        values = {
            "job": job,
            "instance": f"{address}:{kind.port + (uid >> 24)}",
            "namespace": kind.namespace(t),
            "pod": pod,
            "container": kind.container(t),
            "cluster": _CLUSTERS[cluster_number],
            "region": region,
            "zone": f"{region}{'abc'[t % 3]}",
            "service": job,
            "node": f"ip-10-0-{(t * 37) % 300 // 100}-{(t * 37) % 100}.{region}.compute.internal",
            "endpoint": kind.endpoint,
            "app": job,
            "version": f"v1.{t % 9}.{t % 4}",
            "team": _TEAMS[t % len(_TEAMS)],
            "env": "staging" if cluster_number % 2 else "production",
        }
        pairs = []
        for position in range(1, self.label_count):
            if position < len(LABEL_NAMES):
                name = LABEL_NAMES[position]
                pairs.append((name, values[name]))
            else:
                pairs.append((f"label_{position}", f"value-{(t + position) % 10}"))
        return tuple(sorted(pairs))
