package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// kind groups measurements: pulls are compared with the floors of their
// own data set (same layers).
type kind int

const (
	kindPull kind = iota
	kindTransfer
	kindGunzip
	kindWrite
)

// sample is one timed run.
type sample struct {
	dur    time.Duration
	rssKiB int64 // peak RSS of the daemon during a pull; 0 for floors
}

// measurement is one row of the table.
type measurement struct {
	name    string
	kind    kind
	set     string // the layers measured; ratios compare within a set
	cBytes  int64  // compressed bytes moved
	uBytes  int64  // uncompressed (tar) bytes
	samples []sample
}

func (m *measurement) durations() []float64 {
	ds := make([]float64, len(m.samples))
	for i, s := range m.samples {
		ds[i] = s.dur.Seconds()
	}
	return ds
}

func (m *measurement) median() float64 { return median(m.durations()) }
func (m *measurement) min() float64    { return slices.Min(m.durations()) }

// peakRSSMiB is the largest peak over the runs, in MiB; 0 when not measured.
func (m *measurement) peakRSSMiB() float64 {
	var peak int64
	for _, s := range m.samples {
		peak = max(peak, s.rssKiB)
	}
	return float64(peak) / 1024
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// floor is the fastest median among measurements of kind k on set: the
// best way of doing that step alone that the benchmark found.
func floor(ms []*measurement, k kind, set string) float64 {
	best := math.Inf(1)
	for _, m := range ms {
		if m.kind == k && m.set == set && len(m.samples) > 0 {
			best = min(best, m.median())
		}
	}
	return best
}

// header is the context printed above the table.
type header struct {
	command, machine, crirt, registry, image, method string
}

var columns = []string{"measurement", "median s", "min s", "MB/s (tar)", "MB/s (gzip)", "× transfer", "× gunzip", "peak RSS MiB"}

// rows formats the table cells.
func rows(ms []*measurement) [][]string {
	var out [][]string
	for _, m := range ms {
		if len(m.samples) == 0 {
			continue
		}
		med := m.median()
		rss := "-"
		if r := m.peakRSSMiB(); r > 0 {
			rss = fmt.Sprintf("%.0f", r)
		}
		out = append(out, []string{
			m.name,
			fmt.Sprintf("%.3f", med),
			fmt.Sprintf("%.3f", m.min()),
			fmt.Sprintf("%.0f", float64(m.uBytes)/1e6/med),
			fmt.Sprintf("%.0f", float64(m.cBytes)/1e6/med),
			ratio(med, floor(ms, kindTransfer, m.set)),
			ratio(med, floor(ms, kindGunzip, m.set)),
			rss,
		})
	}
	return out
}

func ratio(x, floor float64) string {
	if math.IsInf(floor, 1) || floor == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x/floor)
}

func (h header) lines() [][2]string {
	return [][2]string{
		{"command", h.command},
		{"machine", h.machine},
		{"cri-rt", h.crirt},
		{"registry", h.registry},
		{"image", h.image},
		{"method", h.method},
	}
}

const legend = "MB = 10^6 bytes. × transfer / × gunzip: median divided by the fastest curl / gunzip median on the same layers (1.00 = as fast as that floor alone)."

// printText writes the header and an aligned table.
func printText(w io.Writer, h header, ms []*measurement) {
	for _, l := range h.lines() {
		fmt.Fprintf(w, "%-9s %s\n", l[0]+":", l[1])
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	for _, r := range rows(ms) {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, legend)
}

// printMarkdown writes the same as a list and a table to paste into docs.
func printMarkdown(w io.Writer, h header, ms []*measurement) {
	for _, l := range h.lines() {
		v := mdEscape(l[1])
		if l[0] == "command" {
			v = "`" + l[1] + "`"
		}
		fmt.Fprintf(w, "- %s: %s\n", l[0], v)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| %s |\n", strings.Join(columns, " | "))
	align := make([]string, len(columns))
	for i := range align {
		align[i] = "---:"
	}
	align[0] = ":---"
	fmt.Fprintf(w, "| %s |\n", strings.Join(align, " | "))
	for _, r := range rows(ms) {
		r[0] = mdEscape(r[0])
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, legend)
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`).Replace(s)
}
