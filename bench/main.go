// Command bench measures crmdrop against the fake Zoho CRM (zohotest) on loopback and
// prints one Markdown table row per figure: target, result, ratio and verdict.
//
// Run it from the module root:
//
//	go run ./bench                         every scenario at full size (about 6 minutes)
//	go run ./bench -quick                  every scenario scaled down, no verdicts (CI smoke)
//	go run ./bench -scenario large,latency a selection
//
// Scenarios: throughput (1,000 × 32 KiB at 1/4/8/16 workers against files × latency /
// workers + settle), script (the same files through inotifywait | curl, bench/naive.sh),
// large (one 100 MiB file: daemon peak RSS and throughput against curl -F), scale and
// idle (an inbox of 100,000 uploaded files: restart, RSS, rescan CPU, pickup, 60 s idle
// CPU), latency (drop to upload request, minus settle), ledger (bbolt transitions/s).
//
// The daemon is the real binary (built with go build into a temporary folder) running
// as a child process, so its peak RSS (VmHWM) and CPU time (utime + stime) are read from
// /proc/<pid> on their own. -inproc runs it on goroutines of the bench instead, and
// -cpuprofile then profiles it. The script scenario needs inotifywait (apt-get install
// inotify-tools) and curl; large needs curl. Linux only: it reads /proc.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bench is one invocation: where the binary is, and how big to make things.
type bench struct {
	bin     string
	tmp     string
	quick   bool
	inproc  bool
	workers []int // throughput scenario
	rows    []row
}

// row is one line of the result table.
type row struct {
	Scenario string
	Metric   string
	Target   string
	Result   string
	Ratio    string
	Verdict  string // "pass", "MISS", "" when there is no target
}

var allScenarios = []string{"throughput", "script", "large", "scale", "latency", "ledger"}

func main() {
	scenario := flag.String("scenario", "all", "comma-separated: all, "+strings.Join(allScenarios, ", ")+", idle (= scale)")
	quick := flag.Bool("quick", false, "scaled-down smoke run (seconds; no verdicts)")
	inproc := flag.Bool("inproc", false, "run the daemon inside the bench process (for -cpuprofile; RSS and CPU then include the fake)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the bench process (implies -inproc) to this file")
	keep := flag.Bool("keep", false, "keep the temporary folder (inboxes, daemon logs)")
	workers := flag.String("workers", "1,4,8,16", "worker counts for the throughput scenario")
	bin := flag.String("bin", "", "use this crmdrop binary instead of building one (to compare builds)")
	flag.Parse()

	if runtime.GOOS != "linux" {
		fatalf("the bench reads /proc and runs on Linux only")
	}
	want, err := selectScenarios(*scenario)
	if err != nil {
		fatalf("%v", err)
	}
	b := &bench{quick: *quick, inproc: *inproc || *cpuprofile != ""}
	for _, w := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 || n > 64 {
			fatalf("-workers: %q is not a worker count (1-64)", w)
		}
		b.workers = append(b.workers, n)
	}
	if b.tmp, err = os.MkdirTemp("", "crmdrop-bench-"); err != nil {
		fatalf("%v", err)
	}
	if !*keep {
		defer os.RemoveAll(b.tmp)
	} else {
		fmt.Fprintf(os.Stderr, "keeping %s\n", b.tmp)
	}
	// Interrupted: the daemons and the script die with the bench (Pdeathsig); the
	// temporary folder goes too.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		pprof.StopCPUProfile()
		if !*keep {
			os.RemoveAll(b.tmp)
		}
		fatalf("interrupted")
	}()
	if *bin != "" && !b.inproc {
		if b.bin, err = filepath.Abs(*bin); err != nil {
			fatalf("%v", err)
		}
	} else if !b.inproc {
		if err := b.build(); err != nil {
			os.RemoveAll(b.tmp)
			fatalf("%v", err)
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatalf("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatalf("%v", err)
		}
		defer pprof.StopCPUProfile()
	}

	printMachine(b)
	failed := 0
	for _, s := range allScenarios {
		if !want[s] {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", s)
		start := time.Now()
		if err := b.run(s); err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "%s: %v\n", s, err)
			b.rows = append(b.rows, row{Scenario: s, Metric: "error", Result: oneLine(err.Error()), Verdict: "ERROR"})
		}
		fmt.Fprintf(os.Stderr, "   %s took %v\n", s, time.Since(start).Round(100*time.Millisecond))
	}
	printTable(b.rows, b.quick)
	if failed > 0 {
		pprof.StopCPUProfile()
		if !*keep {
			os.RemoveAll(b.tmp)
		}
		os.Exit(1)
	}
}

func (b *bench) run(s string) error {
	switch s {
	case "throughput":
		return b.throughput()
	case "script":
		return b.script()
	case "large":
		return b.large()
	case "scale":
		return b.scale()
	case "latency":
		return b.latency()
	case "ledger":
		return b.ledger()
	}
	return fmt.Errorf("unknown scenario %q", s)
}

// selectScenarios parses -scenario.
func selectScenarios(s string) (map[string]bool, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "all":
			for _, a := range allScenarios {
				want[a] = true
			}
		case name == "idle":
			want["scale"] = true // measured on the same 100,000-file inbox
		case slices.Contains(allScenarios, name):
			want[name] = true
		default:
			return nil, fmt.Errorf("unknown scenario %q: use all, idle or %s", name, strings.Join(allScenarios, ", "))
		}
	}
	return want, nil
}

// build compiles the daemon from the module the bench belongs to.
func (b *bench) build() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return fmt.Errorf("run the bench from inside the crmdrop module (go env GOMOD: %v)", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	b.bin = filepath.Join(b.tmp, "crmdrop")
	cmd := exec.Command("go", "build", "-o", b.bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// workDir returns a fresh folder for one trial.
func (b *bench) workDir(name string) (string, error) {
	dir := filepath.Join(b.tmp, name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}

func (b *bench) add(r row) {
	if b.quick && r.Verdict != "" {
		r.Verdict = "-"
	}
	b.rows = append(b.rows, r)
	fmt.Fprintf(os.Stderr, "   %s: %s = %s %s %s\n", r.Scenario, r.Metric, r.Result, r.Ratio, r.Verdict)
}

// verdict is "pass" when ok, else "MISS".
func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "MISS"
}

func printMachine(b *bench) {
	cpu := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	mode := "full"
	if b.quick {
		mode = "quick (scaled down; no verdicts)"
	}
	daemon := "child process (go build)"
	if !b.inproc && !strings.HasPrefix(b.bin, b.tmp) {
		daemon = "child process (" + b.bin + ")"
	}
	if b.inproc {
		daemon = "in-process (-inproc: RSS and CPU include the fake)"
	}
	fmt.Printf("crmdrop bench, %s, %s\n\n", mode, time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("- machine: %d CPUs (nproc), %s, kernel %s, %s\n", runtime.NumCPU(), cpu, strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Printf("- daemon: %s\n\n", daemon)
}

func printTable(rows []row, quick bool) {
	fmt.Println("| scenario | metric | target | result | ratio | verdict |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.Scenario, r.Metric, r.Target, r.Result, r.Ratio, r.Verdict)
	}
	if quick {
		fmt.Println("\nQuick mode: sizes scaled down, so targets do not apply.")
	}
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "/")
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// Formatting helpers for the table.

func secs(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func ratio(x float64) string { return fmt.Sprintf("%.2f×", x) }
