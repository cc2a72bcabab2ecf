package main

import (
	"io"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/cryptovps/cryptovps/projections/memory
cpu: AMD EPYC
BenchmarkCompareColdReplay/project-2         	       3	 199000000 ns/op	   1200000 events/s
BenchmarkCompareColdReplay/baseline-2        	       5	 100000000 ns/op	   2400000 events/s
BenchmarkCompareColdReplay/project-2         	       3	 199000000 ns/op	    900000 events/s
BenchmarkCompareColdReplay/baseline-2        	       5	 100000000 ns/op	   2000000 events/s
BenchmarkCompareColdReplay/project-2         	       3	 199000000 ns/op	   1100000 events/s
BenchmarkCompareColdReplay/baseline-2        	       5	 100000000 ns/op	   2200000 events/s
BenchmarkCompareProjectionRebuild
BenchmarkCompareProjectionRebuild/project
    bench_test.go:83: 101298 events made 299392 rows
BenchmarkCompareProjectionRebuild/project-2  	       1	7085673557 ns/op	     14296 events/s
BenchmarkCompareProjectionRebuild/baseline-2 	       1	2256674546 ns/op	     44888 events/s
BenchmarkCompareDiskSize/project-2           	       1	   5000000 ns/op	       335.6 B/event
BenchmarkCompareGetServer/project-2          	   50000	     20000 ns/op	     90000 req/s	   1000000 p99-ns	  500 B/op	   10 allocs/op
BenchmarkCompareGetServer/baseline-2         	   50000	     10000 ns/op	    120000 req/s	    800000 p99-ns	  300 B/op	    5 allocs/op
BenchmarkCompareSomethingNew/project         	       1	   5000000 ns/op	        12.5 widgets/s
ok  	github.com/cryptovps/cryptovps/projections/memory	10.2s
`

func TestTable(t *testing.T) {
	res, failed, err := parse(strings.NewReader(sample), io.Discard)
	if err != nil || failed {
		t.Fatalf("parse: %v, failed %v", err, failed)
	}
	var out strings.Builder
	if report(&out, res) {
		t.Error("report passed a run with missing and failing figures")
	}
	table := out.String()
	for _, want := range []string{
		// The median of three runs: 1.1M beside 2.2M.
		"| ColdReplay | events/s | 1.10M | 2.20M | 0.50 | ≥ 1.00M | pass |",
		"| ProjectionRebuild | events/s | 14.3k | 44.9k | 0.32 | ratio ≥ 0.7 | FAIL |",
		"| DiskSize | B/event | 336 | - | - | ≤ 600 | pass |",
		"| GetServer | req/s | 90.0k | 120k | 0.75 | ratio ≥ 0.7 | pass |",
		"| GetServer | p99-ns | 1.00M | 800k | 1.25 | ratio ≤ 1.5 | pass |",
		"| Audit | events/s | - | - | - | ≥ 333k | MISSING |",
		"| SomethingNew | widgets/s | 12.5 | - | - | (none: higher is better) | |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "allocs/op") {
		t.Errorf("the standard units are not figures:\n%s", table)
	}
}

func TestAllMetPasses(t *testing.T) {
	res := results{}
	for _, tg := range targets {
		v := tg.min
		if v != v { // NaN: a maximum
			v = tg.max
		}
		res.add(tg.figure, "project", tg.unit, v)
		if tg.ratio {
			res.add(tg.figure, "baseline", tg.unit, 1)
		}
	}
	var out strings.Builder
	if !report(&out, res) {
		t.Errorf("every figure exactly at its target failed:\n%s", out.String())
	}
}

func TestFailedRunIsSeen(t *testing.T) {
	for _, line := range []string{"--- FAIL: BenchmarkCompareAudit/project", "FAIL\tgithub.com/x\t1.2s", "panic: boom"} {
		if _, failed, _ := parse(strings.NewReader(line+"\n"), io.Discard); !failed {
			t.Errorf("%q not seen as a failure", line)
		}
	}
}
