package procstat_test

import (
	"os"
	"strings"
	"testing"

	"github.com/vpnfacade/vpnfacade/bench/procstat"
)

// TestThisProcess reads this test's own figures: some CPU spent, a
// resident set no larger than its peak, three load averages.
func TestThisProcess(t *testing.T) {
	spin := 0
	for i := range 50_000_000 {
		spin += i
	}
	_ = spin
	cpu, err := procstat.CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu.Total() <= 0 || cpu.Total() != cpu.User+cpu.System {
		t.Errorf("CPU %+v, want some time spent", cpu)
	}
	m, err := procstat.ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("memory %+v, want 0 < RSS <= HWM", m)
	}
	if f := strings.Fields(procstat.LoadAverage()); len(f) != 3 {
		t.Errorf("load average %q, want three figures", procstat.LoadAverage())
	}
	if _, err := procstat.CPU(-1); err == nil {
		t.Error("CPU of no process: no error")
	}
}
