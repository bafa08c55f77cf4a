// Package procstat reads what a Linux process has used so far (CPU time,
// resident memory) from /proc, and the machine's load average: the figures
// the benchmark programs report beside their latencies.
package procstat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// Times is the CPU time a process has used, in user space and in the
// kernel (where accepting, reading and closing connections cost).
type Times struct {
	User, System time.Duration
}

// Total is user plus system time.
func (t Times) Total() time.Duration { return t.User + t.System }

// CPU returns the CPU time pid has used so far, at 10 ms resolution.
func CPU(pid int) (Times, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Times{}, err
	}
	// The command name, field 2, is parenthesised and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return Times{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return Times{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return Times{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return Times{User: time.Duration(utime) * time.Second / clockTicks, System: time.Duration(stime) * time.Second / clockTicks}, nil
}

// Memory is a process's resident memory, in bytes.
type Memory struct {
	// RSS is VmRSS, the resident set now.
	RSS int64
	// HWM is VmHWM, the peak resident set so far.
	HWM int64
}

// ReadMemory reads VmRSS and VmHWM of pid from /proc/PID/status.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for line := range strings.Lines(string(b)) {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("unexpected %s line %q", name, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Memory{}, err
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	if m.RSS == 0 {
		return Memory{}, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}

// LoadAverage returns the machine's 1-, 5- and 15-minute load averages as
// /proc/loadavg gives them, or "unknown".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
