// Command benchcompare reads the output of `go test -bench '^BenchmarkCompare'`
// on stdin (make bench-compare pipes it in), passes it through to stderr as
// it comes, and prints on stdout the table of issue 17's figures: each
// project figure beside its baseline from the same run, their ratio, the
// target and whether it is met. It exits non-zero when a figure misses its
// target, a figure of the table did not run, or the run itself failed.
//
// A figure is a benchmark BenchmarkCompare<Figure> with sub-benchmarks
// "project" and "baseline" (or "project" alone, for an absolute target),
// reporting the same custom unit with b.ReportMetric. With -count N, the
// median of the N runs is taken. The targets live here, in targets.
package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// target is what a figure must reach. A ratio target compares project with
// baseline (project/baseline); an absolute one the project figure alone.
type target struct {
	figure string
	unit   string
	ratio  bool
	// min or max (one of them, NaN for the other) bounds the ratio or the
	// figure.
	min, max float64
	// what says the words for it.
	what string
}

var none = math.NaN()

// targets are issue 17's, in its order. Figures measured on a smaller log
// than the (CRYPTOVPS_BENCH_EVENTS) are rates, so the same target
// applies.
var targets = []target{
	{"GetServer", "req/s", true, 0.7, none, "authenticated GET /servers/:id ≥ 0.7x a bare Echo handler"},
	{"GetServer", "p99-ns", true, none, 1.5, "its p99 within 1.5x the bare handler's"},
	{"Deploys", "appends/s", true, 0.5, none, "deploys ≥ 0.5x raw bbolt batched appends, 64 writers"},
	{"ColdReplay", "events/s", false, 1_000_000, none, "cold replay ≥ 1,000,000 events/s"},
	{"Startup", "events/s", false, 500_000, none, "a data dir of 1M events serving within 2 s"},
	{"Restart", "events/s", false, 500_000, none, "a data dir of 1M events serving within 2 s, after a clean stop"},
	{"DiskSize", "B/event", false, none, 600, "≤ 600 bytes per event on disk"},
	{"MemoryPerServer", "B/server", false, none, 2048, "≤ 2 KiB per live server after the first tick"},
	{"HourlyTick", "s/tick", false, none, 2, "hourly tick of 100,000 live servers < 2 s"},
	{"IdleCPU", "%core", false, none, 1, "nothing due: < 1% of a core at 100,000 live servers"},
	{"LongAccount", "ns/first-command", false, none, 50e6, "first command on a 100k-event account ≤ 50 ms"},
	{"LongAccount", "ns/later-command", false, none, 5e6, "later commands ≤ 5 ms"},
	{"ProjectionRebuild", "events/s", true, 0.7, none, "Postgres rebuild ≥ 0.7x COPY into the same tables"},
	{"Audit", "events/s", false, 333_334, none, "audit of 1M events < 3 s, read-model check included"},
}

func main() {
	res, failed, err := parse(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcompare:", err)
		os.Exit(2)
	}
	ok := report(os.Stdout, res)
	if failed {
		fmt.Fprintln(os.Stdout, "\nThe benchmark run itself failed (see above).")
		ok = false
	}
	if !ok {
		os.Exit(1)
	}
}

// results holds every value a figure's sub-benchmarks reported, by figure,
// sub-benchmark ("project", "baseline") and unit.
type results map[string]map[string]map[string][]float64

func (r results) add(figure, sub, unit string, v float64) {
	if r[figure] == nil {
		r[figure] = map[string]map[string][]float64{}
	}
	if r[figure][sub] == nil {
		r[figure][sub] = map[string][]float64{}
	}
	r[figure][sub][unit] = append(r[figure][sub][unit], v)
}

// median of the runs of figure/sub in unit, and whether there was one.
func (r results) median(figure, sub, unit string) (float64, bool) {
	vs := slices.Clone(r[figure][sub][unit])
	if len(vs) == 0 {
		return 0, false
	}
	sort.Float64s(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// parse reads go test output, copying it to echo, and collects the
// BenchmarkCompare results; failed reports a FAIL or a panic in the run.
func parse(in io.Reader, echo io.Writer) (results, bool, error) {
	res := results{}
	failed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "panic:") {
			failed = true
		}
		figure, sub, metrics, ok := benchLine(line)
		if !ok {
			continue
		}
		for unit, v := range metrics {
			res.add(figure, sub, unit, v)
		}
	}
	return res, failed, sc.Err()
}

// benchLine reads a result line of a BenchmarkCompare sub-benchmark:
//
//	BenchmarkCompareAudit/project-2   1   2968473380 ns/op   337000 events/s
func benchLine(line string) (figure, sub string, metrics map[string]float64, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 4 || !strings.HasPrefix(fields[0], "BenchmarkCompare") {
		return "", "", nil, false
	}
	if _, err := strconv.Atoi(fields[1]); err != nil {
		return "", "", nil, false // the name alone, as -v prints it first
	}
	name := strings.TrimPrefix(fields[0], "BenchmarkCompare")
	figure, rest, found := strings.Cut(name, "/")
	if !found {
		return "", "", nil, false
	}
	sub, _, _ = strings.Cut(rest, "/")
	// The name ends with -GOMAXPROCS, unless that is 1.
	if i := strings.LastIndexByte(sub, '-'); i > 0 {
		if _, err := strconv.Atoi(sub[i+1:]); err == nil {
			sub = sub[:i]
		}
	}
	metrics = map[string]float64{}
	for i := 2; i+1 < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return "", "", nil, false
		}
		metrics[fields[i+1]] = v
	}
	return figure, sub, metrics, true
}

// lowerIsBetter guesses a unit's direction for figures the table does not
// know: times, sizes and shares are better small.
func lowerIsBetter(unit string) bool {
	return strings.HasPrefix(unit, "ns/") || strings.HasPrefix(unit, "s/") || strings.HasPrefix(unit, "B/") ||
		strings.HasSuffix(unit, "-ns") || strings.HasPrefix(unit, "%")
}

// report prints the table and says whether every target was met.
func report(w io.Writer, res results) bool {
	ok := true
	fmt.Fprintln(w, "| figure | unit | project | baseline | ratio | target | |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | --- | --- |")
	known := map[string]bool{}
	for _, t := range targets {
		known[t.figure+" "+t.unit] = true
		p, hasP := res.median(t.figure, "project", t.unit)
		b, hasB := res.median(t.figure, "baseline", t.unit)
		verdict := "MISSING"
		ratio := math.NaN()
		if hasP && hasB && b != 0 {
			ratio = p / b
		}
		if hasP && (!t.ratio || !math.IsNaN(ratio)) {
			v := p
			if t.ratio {
				v = ratio
			}
			verdict = "pass"
			if (!math.IsNaN(t.min) && v < t.min) || (!math.IsNaN(t.max) && v > t.max) {
				verdict = "FAIL"
			}
		}
		if verdict != "pass" {
			ok = false
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", t.figure, t.unit, show(p, hasP), show(b, hasB),
			showRatio(ratio), bound(t), verdict)
	}
	// Figures that ran without a target here, for the record.
	var extra []string
	for figure, subs := range res {
		for unit := range subs["project"] {
			if !known[figure+" "+unit] && unit != "ns/op" && unit != "B/op" && unit != "allocs/op" {
				extra = append(extra, figure+" "+unit)
			}
		}
	}
	sort.Strings(extra)
	for _, e := range extra {
		figure, unit, _ := strings.Cut(e, " ")
		p, hasP := res.median(figure, "project", unit)
		b, hasB := res.median(figure, "baseline", unit)
		ratio := math.NaN()
		if hasP && hasB && b != 0 {
			ratio = p / b
		}
		dir := "higher is better"
		if lowerIsBetter(unit) {
			dir = "lower is better"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | (none: %s) | |\n", figure, unit, show(p, hasP), show(b, hasB), showRatio(ratio), dir)
	}
	fmt.Fprintln(w)
	for _, t := range targets {
		fmt.Fprintf(w, "- %s (%s): %s\n", t.figure, t.unit, t.what)
	}
	return ok
}

func bound(t target) string {
	v, op := t.min, "≥"
	if math.IsNaN(v) {
		v, op = t.max, "≤"
	}
	if t.ratio {
		return fmt.Sprintf("ratio %s %g", op, v)
	}
	return fmt.Sprintf("%s %s", op, human(v))
}

func show(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return human(v)
}

func showRatio(r float64) string {
	if math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}

// human writes a figure with three significant digits and a k/M/G suffix.
func human(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', decimals(a/1e9), 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', decimals(a/1e6), 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', decimals(a/1e3), 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', decimals(a), 64)
}

func decimals(a float64) int {
	switch {
	case a >= 100:
		return 0
	case a >= 10:
		return 1
	case a >= 1:
		return 2
	}
	return 3
}
