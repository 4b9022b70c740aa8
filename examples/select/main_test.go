package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/arpc-go/arpc/internal/exampletest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSelect runs the demo and checks what it prints: the timer wins the
// first wait, the warehouse the second; 1,000 jobs are taken, each once,
// and the per-consumer counts add up.
func TestSelect(t *testing.T) {
	got := exampletest.Run(t, run)
	t.Logf("output:\n%s", got)
	for _, line := range []string{
		"wait 1: timer: nothing within 50ms\n",
		"wait 2: warehouse: Packed (tick 1)\n",
		"jobs: 10 consumers took 1000 jobs in ",
		"jobs: 1000 distinct, 0 taken twice; the source logged 1000 takes\n",
	} {
		if !strings.Contains(got, line) {
			t.Fatalf("missing %q in output:\n%s", line, got)
		}
	}
	m := regexp.MustCompile(`jobs: per consumer: (.*)\n`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no per-consumer line in output:\n%s", got)
	}
	sum := 0
	for _, f := range strings.Fields(m[1]) {
		_, n, _ := strings.Cut(f, "=")
		k, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("bad count %q", f)
		}
		sum += k
	}
	if sum != jobCount {
		t.Fatalf("the consumers took %d jobs in all, want %d", sum, jobCount)
	}
	if !regexp.MustCompile(`jobs: \d+ conflicts`).MatchString(got) {
		t.Fatalf("no conflict count in output:\n%s", got)
	}
}

// TestTakeJobs checks the takes themselves: every job once, by the consumer
// the source logged, and the conflicts are counted (10 consumers on 4
// slots can't all win).
func TestTakeJobs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), exampletest.Timeout)
	defer cancel()
	st, err := takeJobs(ctx, jobCount, consumers)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.check(); err != nil {
		t.Fatal(err)
	}
	seen := make([]int, jobCount)
	for _, c := range st.consumers {
		for _, job := range c.jobs {
			seen[job]++
		}
	}
	for job, n := range seen {
		if n != 1 {
			t.Fatalf("job %d taken %d times", job, n)
		}
	}
	if st.conflicts() == 0 {
		t.Errorf("no conflicts: the consumers did not compete")
	}
	t.Logf("%d conflicts", st.conflicts())
}
