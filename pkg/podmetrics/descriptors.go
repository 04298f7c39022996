// Package podmetrics collects cAdvisor-style metrics of pod sandboxes and
// their containers for the CRI ListMetricDescriptors, ListPodSandboxMetrics
// and StreamPodSandboxMetrics RPCs, with the names, help texts and label keys
// of kubelet's /metrics/cadvisor, so that kubelet can serve that endpoint
// from the runtime (the PodAndContainerStatsFromCRI feature).
//
// Values come from the cgroup files of each container and pod (cgroup v1
// per-controller hierarchies or the v2 unified one, found through a Layout),
// from procfs (processes, threads, file descriptors, sockets, ulimits, the
// pod's network interfaces) and from the filesystem of the writable layers.
// Every reader takes the directories it reads from, so tests point it at
// fake trees.
//
// The CRI carries values as unsigned integers: durations are reported in
// whole seconds, as containerd does.
package podmetrics

import (
	"slices"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// baseLabelKeys label every metric, in cAdvisor's order: the container's
// name in its pod ("" for pod-level metrics), its cgroup, its image, its
// runtime ID (the sandbox ID for pod-level metrics), and the pod's namespace
// and name.
var baseLabelKeys = []string{"container", "id", "image", "name", "namespace", "pod"}

// Metric names, as kubelet's /metrics/cadvisor shows them.
const (
	CPUUsageSecondsTotal         = "container_cpu_usage_seconds_total"
	CPUUserSecondsTotal          = "container_cpu_user_seconds_total"
	CPUSystemSecondsTotal        = "container_cpu_system_seconds_total"
	CPUCfsPeriodsTotal           = "container_cpu_cfs_periods_total"
	CPUCfsThrottledPeriodsTotal  = "container_cpu_cfs_throttled_periods_total"
	CPUCfsThrottledSecondsTotal  = "container_cpu_cfs_throttled_seconds_total"
	MemoryUsageBytes             = "container_memory_usage_bytes"
	MemoryMaxUsageBytes          = "container_memory_max_usage_bytes"
	MemoryWorkingSetBytes        = "container_memory_working_set_bytes"
	MemoryCache                  = "container_memory_cache"
	MemoryRSS                    = "container_memory_rss"
	MemoryMappedFile             = "container_memory_mapped_file"
	MemorySwap                   = "container_memory_swap"
	MemoryKernelUsage            = "container_memory_kernel_usage"
	MemoryFailcnt                = "container_memory_failcnt"
	MemoryFailuresTotal          = "container_memory_failures_total"
	OOMEventsTotal               = "container_oom_events_total"
	HugetlbUsageBytes            = "container_hugetlb_usage_bytes"
	HugetlbMaxUsageBytes         = "container_hugetlb_max_usage_bytes"
	PressureCPUStalledSeconds    = "container_pressure_cpu_stalled_seconds_total"
	PressureCPUWaitingSeconds    = "container_pressure_cpu_waiting_seconds_total"
	PressureMemoryStalledSeconds = "container_pressure_memory_stalled_seconds_total"
	PressureMemoryWaitingSeconds = "container_pressure_memory_waiting_seconds_total"
	PressureIOStalledSeconds     = "container_pressure_io_stalled_seconds_total"
	PressureIOWaitingSeconds     = "container_pressure_io_waiting_seconds_total"
	FsReadsBytesTotal            = "container_fs_reads_bytes_total"
	FsReadsTotal                 = "container_fs_reads_total"
	FsWritesBytesTotal           = "container_fs_writes_bytes_total"
	FsWritesTotal                = "container_fs_writes_total"
	BlkioDeviceUsageTotal        = "container_blkio_device_usage_total"
	FsUsageBytes                 = "container_fs_usage_bytes"
	FsLimitBytes                 = "container_fs_limit_bytes"
	FsInodesTotal                = "container_fs_inodes_total"
	FsInodesFree                 = "container_fs_inodes_free"
	NetworkReceiveBytesTotal     = "container_network_receive_bytes_total"
	NetworkReceivePacketsTotal   = "container_network_receive_packets_total"
	NetworkReceiveErrorsTotal    = "container_network_receive_errors_total"
	NetworkReceiveDroppedTotal   = "container_network_receive_packets_dropped_total"
	NetworkTransmitBytesTotal    = "container_network_transmit_bytes_total"
	NetworkTransmitPacketsTotal  = "container_network_transmit_packets_total"
	NetworkTransmitErrorsTotal   = "container_network_transmit_errors_total"
	NetworkTransmitDroppedTotal  = "container_network_transmit_packets_dropped_total"
	Processes                    = "container_processes"
	Threads                      = "container_threads"
	ThreadsMax                   = "container_threads_max"
	FileDescriptors              = "container_file_descriptors"
	Sockets                      = "container_sockets"
	UlimitsSoft                  = "container_ulimits_soft"
	LastSeen                     = "container_last_seen"
	StartTimeSeconds             = "container_start_time_seconds"
	SpecCPUPeriod                = "container_spec_cpu_period"
	SpecCPUQuota                 = "container_spec_cpu_quota"
	SpecCPUShares                = "container_spec_cpu_shares"
	SpecMemoryLimitBytes         = "container_spec_memory_limit_bytes"
	SpecMemoryReservationBytes   = "container_spec_memory_reservation_limit_bytes"
	SpecMemorySwapLimitBytes     = "container_spec_memory_swap_limit_bytes"
)

// def describes one metric: what ListMetricDescriptors returns for it and
// the type its values carry.
type def struct {
	name, help string
	typ        runtimeapi.MetricType
	// extra are the label keys after baseLabelKeys.
	extra []string
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// defs lists every metric this package emits, with cAdvisor's help texts.
var defs = []def{
	{CPUUsageSecondsTotal, "Cumulative cpu time consumed in seconds.", counter, nil},
	{CPUUserSecondsTotal, "Cumulative user cpu time consumed in seconds.", counter, nil},
	{CPUSystemSecondsTotal, "Cumulative system cpu time consumed in seconds.", counter, nil},
	{CPUCfsPeriodsTotal, "Number of elapsed enforcement period intervals.", counter, nil},
	{CPUCfsThrottledPeriodsTotal, "Number of throttled period intervals.", counter, nil},
	{CPUCfsThrottledSecondsTotal, "Total time duration the container has been throttled.", counter, nil},

	{MemoryUsageBytes, "Current memory usage in bytes, including all memory regardless of when it was accessed", gauge, nil},
	{MemoryMaxUsageBytes, "Maximum memory usage recorded in bytes", gauge, nil},
	{MemoryWorkingSetBytes, "Current working set in bytes.", gauge, nil},
	{MemoryCache, "Number of bytes of page cache memory.", gauge, nil},
	{MemoryRSS, "Size of RSS in bytes.", gauge, nil},
	{MemoryMappedFile, "Size of memory mapped files in bytes.", gauge, nil},
	{MemorySwap, "Container swap usage in bytes.", gauge, nil},
	{MemoryKernelUsage, "Size of kernel memory allocated in bytes.", gauge, nil},
	{MemoryFailcnt, "Number of memory usage hits limits", counter, nil},
	{MemoryFailuresTotal, "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}},
	{OOMEventsTotal, "Count of out of memory events observed for the container", counter, nil},

	{HugetlbUsageBytes, "Current hugepage usage in bytes", gauge, []string{"pagesize"}},
	{HugetlbMaxUsageBytes, "Maximum hugepage usages recorded in bytes", gauge, []string{"pagesize"}},

	{PressureCPUStalledSeconds, "Total time duration no tasks in the container could make progress due to CPU congestion.", counter, nil},
	{PressureCPUWaitingSeconds, "Total time duration tasks in the container have waited due to CPU congestion.", counter, nil},
	{PressureMemoryStalledSeconds, "Total time duration no tasks in the container could make progress due to memory congestion.", counter, nil},
	{PressureMemoryWaitingSeconds, "Total time duration tasks in the container have waited due to memory congestion.", counter, nil},
	{PressureIOStalledSeconds, "Total time duration no tasks in the container could make progress due to IO congestion.", counter, nil},
	{PressureIOWaitingSeconds, "Total time duration tasks in the container have waited due to IO congestion.", counter, nil},

	{FsReadsBytesTotal, "Cumulative count of bytes read", counter, []string{"device"}},
	{FsReadsTotal, "Cumulative count of reads completed", counter, []string{"device"}},
	{FsWritesBytesTotal, "Cumulative count of bytes written", counter, []string{"device"}},
	{FsWritesTotal, "Cumulative count of writes completed", counter, []string{"device"}},
	{BlkioDeviceUsageTotal, "Blkio Device bytes usage", counter, []string{"device", "major", "minor", "operation"}},

	{FsUsageBytes, "Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"}},
	{FsLimitBytes, "Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"}},
	{FsInodesTotal, "Number of Inodes", gauge, []string{"device"}},
	{FsInodesFree, "Number of available Inodes", gauge, []string{"device"}},

	{NetworkReceiveBytesTotal, "Cumulative count of bytes received", counter, []string{"interface"}},
	{NetworkReceivePacketsTotal, "Cumulative count of packets received", counter, []string{"interface"}},
	{NetworkReceiveErrorsTotal, "Cumulative count of errors encountered while receiving", counter, []string{"interface"}},
	{NetworkReceiveDroppedTotal, "Cumulative count of packets dropped while receiving", counter, []string{"interface"}},
	{NetworkTransmitBytesTotal, "Cumulative count of bytes transmitted", counter, []string{"interface"}},
	{NetworkTransmitPacketsTotal, "Cumulative count of packets transmitted", counter, []string{"interface"}},
	{NetworkTransmitErrorsTotal, "Cumulative count of errors encountered while transmitting", counter, []string{"interface"}},
	{NetworkTransmitDroppedTotal, "Cumulative count of packets dropped while transmitting", counter, []string{"interface"}},

	{Processes, "Number of processes running inside the container.", gauge, nil},
	{Threads, "Number of threads running inside the container", gauge, nil},
	{ThreadsMax, "Maximum number of threads allowed inside the container, infinity if value is zero", gauge, nil},
	{FileDescriptors, "Number of open file descriptors for the container.", gauge, nil},
	{Sockets, "Number of open sockets for the container.", gauge, nil},
	{UlimitsSoft, "Soft ulimit values for the container root process. Unlimited values are not reported.", gauge, []string{"ulimit"}},

	{LastSeen, "Last time a container was seen by the exporter", gauge, nil},
	{StartTimeSeconds, "Start time of the container since unix epoch in seconds.", gauge, nil},

	{SpecCPUPeriod, "CPU period of the container.", gauge, nil},
	{SpecCPUQuota, "CPU quota of the container.", gauge, nil},
	{SpecCPUShares, "CPU share of the container.", gauge, nil},
	{SpecMemoryLimitBytes, "Memory limit for the container, 0 if unlimited.", gauge, nil},
	{SpecMemoryReservationBytes, "Memory reservation limit for the container, 0 if unlimited.", gauge, nil},
	{SpecMemorySwapLimitBytes, "Memory swap limit for the container (memory plus swap), 0 if unlimited.", gauge, nil},
}

// byName indexes defs.
var byName = func() map[string]*def {
	m := make(map[string]*def, len(defs))
	for i := range defs {
		m[defs[i].name] = &defs[i]
	}
	return m
}()

// Descriptors returns the descriptor of every metric ListPodSandboxMetrics
// may return; the label values of each metric follow its descriptor's keys.
func Descriptors() []*runtimeapi.MetricDescriptor {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(defs))
	for _, d := range defs {
		out = append(out, &runtimeapi.MetricDescriptor{
			Name: d.name, Help: d.help,
			LabelKeys: slices.Concat(baseLabelKeys, d.extra),
		})
	}
	return out
}
