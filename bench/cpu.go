package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the whole machine's busy CPU time and the time the hypervisor stole, from
// /proc/stat (Linux; ok is false elsewhere). Other processes' share of a phase is the machine's
// busy time minus this process's: the benchmark is only fair while that stays small.
type machineCPU struct {
	busy, steal time.Duration
	ok          bool
}

// clockTick is USER_HZ, the unit of /proc/stat: 100 on every Linux architecture Go supports.
const clockTick = 100

func readMachineCPU() machineCPU {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}
	}
	var v [8]int64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return machineCPU{}
		}
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTick }
	return machineCPU{busy: tick(v[0] + v[1] + v[2] + v[5] + v[6]), steal: tick(v[7]), ok: true}
}
