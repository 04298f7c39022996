package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
)

// stat picks the figure of a metric's samples.
type stat int

const (
	p50 stat = iota
	p95
)

func (s stat) of(xs []float64) float64 {
	if s == p95 {
		return percentile(xs, 95)
	}
	return percentile(xs, 50)
}

// rowDef is one line of the table.
type rowDef struct {
	label  string
	key    string
	stat   stat
	unit   string  // ms, s, MiB or "" (a count)
	target float64 // the cri-rt / containerd ratio to reach; 0 = none
	floor  bool    // the floor has this metric
	noRat  bool    // no ratio (counts)
}

var rowDefs = []rowDef{
	{label: "daemon start to CRI ready", key: "startup", unit: "s"},
	{label: "RunPodSandbox (CNI bridge) p50", key: "runpod", unit: "ms", target: 0.8, floor: true},
	{label: "RunPodSandbox (CNI bridge) p95", key: "runpod", stat: p95, unit: "ms", floor: true},
	{label: "CreateContainer+StartContainer p50", key: "createstart", unit: "ms", target: 0.8, floor: true},
	{label: "CreateContainer+StartContainer p95", key: "createstart", stat: p95, unit: "ms", floor: true},
	{label: "StopContainer+RemoveContainer p50", key: "stoprm", unit: "ms", floor: true},
	{label: "StopContainer+RemoveContainer p95", key: "stoprm", stat: p95, unit: "ms", floor: true},
	{label: "StopPodSandbox+RemovePodSandbox p50", key: "stoprmpod", unit: "ms", floor: true},
	{label: "StopPodSandbox+RemovePodSandbox p95", key: "stoprmpod", stat: p95, unit: "ms", floor: true},
	{label: "full pod lifecycle p50", key: "lifecycle", unit: "ms", floor: true},
	{label: "full pod lifecycle p95", key: "lifecycle", stat: p95, unit: "ms", floor: true},
	{label: "20 pods started concurrently, wall", key: "conc", unit: "s", floor: true},
	{label: "20 pods stopped+removed concurrently, wall", key: "concdown", unit: "s", floor: true},
	{label: "ExecSync p50", key: "exec", unit: "ms", floor: true},
	{label: "ExecSync p95", key: "exec", stat: p95, unit: "ms", floor: true},
	{label: "ListContainers, 100 containers, p50", key: "list", unit: "ms"},
	{label: "ListContainers, 100 containers, p95", key: "list", stat: p95, unit: "ms"},
	{label: "PullImage cold", key: "pullcold", unit: "s", target: 0.7, floor: true},
	{label: "PullImage, shared layers (1 new)", key: "pullshared", unit: "s", floor: true},
	{label: "unpack alone: gunzip+untar+write of the layers in parallel", key: "unpack", unit: "s", floor: true},
	{label: "daemon peak RSS during cold pull", key: "pullrss", unit: "MiB"},
	{label: "daemon RSS, idle", key: "idle.daemon.rss", unit: "MiB"},
	{label: "daemon PSS, idle", key: "idle.daemon.pss", unit: "MiB"},
	{label: "daemon RSS, 20 pods running", key: "pods.daemon.rss", unit: "MiB"},
	{label: "daemon PSS, 20 pods running", key: "pods.daemon.pss", unit: "MiB"},
	{label: "shim/monitor processes, 20 pods", key: "pods.helpers.n", noRat: true},
	{label: "shims/monitors RSS sum, 20 pods", key: "pods.helpers.rss", unit: "MiB"},
	{label: "shims/monitors PSS sum, 20 pods", key: "pods.helpers.pss", unit: "MiB"},
	{label: "daemon + shims/monitors RSS, 20 pods", key: "pods.total.rss", unit: "MiB"},
	{label: "daemon + shims/monitors PSS, 20 pods", key: "pods.total.pss", unit: "MiB", target: 0.6},
}

// value returns a row's figure in its unit, NaN when not measured.
func (d rowDef) value(r results) float64 {
	xs := r[d.key]
	if len(xs) == 0 {
		return math.NaN()
	}
	v := d.stat.of(xs)
	switch d.unit {
	case "ms":
		return v * 1e3
	case "MiB":
		return v / 1024
	}
	return v
}

func fmtVal(v float64, unit string) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch {
	case unit == "":
		return fmt.Sprintf("%.0f", v)
	case unit == "ms" && v < 100, unit == "MiB" && v < 100:
		return fmt.Sprintf("%.1f", v)
	case unit == "s":
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// table is the report: the header lines and the cells.
type table struct {
	header   [][2]string
	columns  []string
	rows     [][]string
	verdicts []string // one line per target
	notes    []string // where the time or memory goes, for missed targets
	profile  []string // cri-rt's own stage timings
	memory   []string // memory by process kind, per runtime
}

// buildTable compares cri-rt (rts[0]) against the better of the
// containerds (rts[1:]) on every row.
func buildTable(header [][2]string, rts []*runtimeDef, res map[string]results, floorRes results) *table {
	t := &table{header: header}
	t.columns = []string{"measurement"}
	for _, rt := range rts {
		t.columns = append(t.columns, rt.name)
	}
	t.columns = append(t.columns, "floor", "cri-rt ÷ best containerd", "target")
	for _, d := range rowDefs {
		label := d.label
		if d.unit != "" {
			label += " (" + d.unit + ")"
		}
		row := []string{label}
		var vals []float64
		for _, rt := range rts {
			v := d.value(res[rt.key])
			vals = append(vals, v)
			row = append(row, fmtVal(v, d.unit))
		}
		fl := "-"
		if d.floor {
			fl = fmtVal(d.value(floorRes), d.unit)
		}
		row = append(row, fl)
		best := math.NaN()
		for _, v := range vals[1:] {
			if !math.IsNaN(v) && (math.IsNaN(best) || v < best) {
				best = v
			}
		}
		ratio := math.NaN()
		if rts[0].flavor == flavorCrirt && len(vals) > 1 {
			ratio = vals[0] / best
		}
		rs := "-"
		if !d.noRat && !math.IsNaN(ratio) && !math.IsInf(ratio, 0) {
			rs = fmt.Sprintf("%.2f", ratio)
		}
		row = append(row, rs)
		tg := ""
		if d.target > 0 && !math.IsNaN(ratio) {
			met := !math.IsNaN(ratio) && ratio <= d.target
			tg = fmt.Sprintf("≤ %.2f: %s", d.target, verdict(met))
			t.verdicts = append(t.verdicts, fmt.Sprintf("%s: cri-rt %s %s, best containerd %s %s, ratio %s, target ≤ %.2f: %s",
				d.label, fmtVal(vals[0], d.unit), d.unit, fmtVal(best, d.unit), d.unit, rs, d.target, verdict(met)))
			if !met {
				t.notes = append(t.notes, whereItGoes(d, res[rts[0].key], floorRes))
			}
		}
		row = append(row, tg)
		t.rows = append(t.rows, row)
	}
	return t
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// whereItGoes breaks a missed figure down from what was measured: the
// share of the floor (the work itself) for times, daemon against
// monitors for memory. cri-rt has no profiling endpoint; these timings
// and /proc figures are the profile.
func whereItGoes(d rowDef, r, floorRes results) string {
	switch d.key {
	case "pods.total.pss":
		n := percentile(r["pods.helpers.n"], 50)
		per := 0.0
		if n > 0 {
			per = percentile(r["pods.helpers.pss"], 50) / n / 1024
		}
		return fmt.Sprintf("%s: daemon %.1f MiB PSS (%.1f idle) + %.0f monitors × %.2f MiB PSS = %.1f MiB (breakdown below)",
			d.label, percentile(r["pods.daemon.pss"], 50)/1024, percentile(r["idle.daemon.pss"], 50)/1024, n, per, percentile(r["pods.total.pss"], 50)/1024)
	case "pullcold":
		return fmt.Sprintf("%s: cri-rt %.2f s; alone, the transfer (curl, layers in parallel) takes %.2f s and gunzip+untar+write of the layers in parallel %.2f s",
			d.label, percentile(r["pullcold"], 50), percentile(floorRes["pullcold"], 50), percentile(floorRes["unpack"], 50))
	default:
		v, f := d.value(r), d.value(floorRes)
		if math.IsNaN(f) || math.IsNaN(v) {
			return d.label + ": no breakdown"
		}
		return fmt.Sprintf("%s: cri-rt %s %s, of which the floor (the same work done straight) is %s %s (%.0f%%); the rest, %s %s, is cri-rt's own",
			d.label, fmtVal(v, d.unit), d.unit, fmtVal(f, d.unit), d.unit, 100*f/v, fmtVal(v-f, d.unit), d.unit)
	}
}

// memoryLines break the 20-pod memory down per runtime: the daemon's PSS
// into heap/stacks (anon) and mapped files (binary text), and the
// per-process figures of the shims or monitors.
func memoryLines(defs []*runtimeDef, res map[string]results) []string {
	var out []string
	for _, d := range defs {
		r := res[d.key]
		n := percentile(r["pods.helpers.n"], 50)
		if math.IsNaN(n) || n == 0 {
			continue
		}
		m := func(k string) float64 { return percentile(r[k], 50) / 1024 }
		kind := "shims"
		if d.flavor == flavorCrirt {
			kind = "monitors"
		}
		out = append(out, fmt.Sprintf("%s: daemon PSS %.1f MiB (anon %.1f, file %.1f; %.1f idle); %.0f %s, each PSS %.2f MiB (anon %.2f, file %.2f), RSS %.1f MiB",
			d.name, m("pods.daemon.pss"), m("pods.daemon.pssanon"), m("pods.daemon.pssfile"), m("idle.daemon.pss"),
			n, kind, m("pods.helpers.pss")/n, m("pods.helpers.pssanon")/n, m("pods.helpers.pssfile")/n, m("pods.helpers.rss")/n))
	}
	return out
}

func printText(w io.Writer, t *table) {
	for _, h := range t.header {
		fmt.Fprintf(w, "%-9s %s\n", h[0]+":", h[1])
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(t.columns, "\t")+"\t")
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, v := range t.verdicts {
		fmt.Fprintln(w, "target:", v)
	}
	for _, n := range t.notes {
		fmt.Fprintln(w, "where it goes:", n)
	}
	for _, l := range t.profile {
		fmt.Fprintln(w, "cri-rt profile:", l)
	}
	for _, l := range t.memory {
		fmt.Fprintln(w, "memory:", l)
	}
}

func markdown(t *table) string {
	var b strings.Builder
	for _, h := range t.header {
		v := h[1]
		if h[0] == "command" {
			v = "`" + v + "`"
		} else {
			v = mdEscape(v)
		}
		fmt.Fprintf(&b, "- %s: %s\n", h[0], v)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "| %s |\n", strings.Join(t.columns, " | "))
	align := make([]string, len(t.columns))
	for i := range align {
		align[i] = "---:"
	}
	align[0] = ":---"
	fmt.Fprintf(&b, "| %s |\n", strings.Join(align, " | "))
	for _, r := range t.rows {
		cells := append([]string{mdEscape(r[0])}, r[1:]...)
		if strings.Contains(r[len(r)-1], "MISSED") {
			cells[len(cells)-1] = "**" + r[len(r)-1] + "**"
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	b.WriteString("\nTargets:\n\n")
	for _, v := range t.verdicts {
		fmt.Fprintf(&b, "- %s\n", mdEscape(v))
	}
	if len(t.notes) > 0 {
		b.WriteString("\nWhere the time or memory goes, for the missed targets (against the floor, and from /proc):\n\n")
		for _, n := range t.notes {
			fmt.Fprintf(&b, "- %s\n", mdEscape(n))
		}
	}
	if len(t.profile) > 0 {
		b.WriteString("\ncri-rt's profile, from its own metrics and pprof (a separate daemon with metrics and [debug] address on; its wall time is mostly spent waiting for runc, the monitors and the CNI plugins, which its CPU profile does not show):\n\n")
		for _, l := range t.profile {
			fmt.Fprintf(&b, "- %s\n", mdEscape(l))
		}
	}
	if len(t.memory) > 0 {
		b.WriteString("\nMemory with 20 pods running, by process (medians over the rounds):\n\n")
		for _, l := range t.memory {
			fmt.Fprintf(&b, "- %s\n", mdEscape(l))
		}
	}
	return b.String()
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`).Replace(s)
}

const (
	beginMark = "<!-- BEGIN hack/bench output: regenerated by make bench, do not edit -->"
	endMark   = "<!-- END hack/bench output -->"
)

// writeDoc puts the report between the markers of path, keeping the text
// around them; a file without them is created with a title.
func writeDoc(path, body string) error {
	section := beginMark + "\n\n" + body + "\n" + endMark + "\n"
	old, err := os.ReadFile(path)
	var out string
	switch {
	case err == nil && strings.Contains(string(old), beginMark) && strings.Contains(string(old), endMark):
		s := string(old)
		i := strings.Index(s, beginMark)
		j := strings.Index(s, endMark) + len(endMark)
		if j < len(s) && s[j] == '\n' {
			j++
		}
		out = s[:i] + section + s[j:]
	case err == nil:
		out = string(old) + "\n" + section
	default:
		out = "# Benchmarks\n\n" + section
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
