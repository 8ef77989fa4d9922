//go:build linux

package local

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func supported() error { return nil }

// noFollow opens a file only if it is not a symbolic link.
const noFollow = syscall.O_NOFOLLOW

// sysProcAttr puts a job's shell in a group of its own, as its user, and
// has the kernel kill it if the thread that started it ends (the executor
// crashed). Pdeathsig reaches the shell only: what it started stays, in
// its group, until a new Executor kills it.
func sysProcAttr(a account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if a.switchTo {
		attr.Credential = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
	}
	return attr
}

// signalGroup sends sig to every process of group pgid.
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 {
		syscall.Kill(-pgid, sig) // ESRCH: nothing is left of it
	}
}

// waitExited waits until process pid, a child, has exited, and leaves it
// to be reaped (waitid with WNOWAIT): until then its pid stays its own.
func waitExited(pid int) error {
	const pPID, wEXITED, wNOWAIT = 1, 4, 0x1000000
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), wEXITED|wNOWAIT, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return fmt.Errorf("local: wait for %d: %w", pid, errno)
		}
	}
}

// exitOf is a process's exit code, or the signal that ended it.
func exitOf(ps *os.ProcessState) (code, sig int) {
	if ps == nil {
		return -1, 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, int(ws.Signal())
	}
	return ps.ExitCode(), 0
}

// procStat is what /proc/<pid>/stat tells of a process.
type procStat struct {
	pid        int
	state      byte
	pgrp       int
	startTicks uint64 // since boot
}

func readStat(pid int) (procStat, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("local: malformed " + dir + "/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, errors.New("local: malformed " + dir + "/stat")
	}
	s := procStat{pid: pid, state: f[0][0]}
	s.pgrp, err = strconv.Atoi(f[2])
	if err == nil {
		s.startTicks, err = strconv.ParseUint(f[19], 10, 64)
	}
	if err != nil {
		return procStat{}, fmt.Errorf("local: malformed %s/stat: %w", dir, err)
	}
	return s, nil
}

// owner is the user process pid runs as (its effective uid).
func owner(pid int) (uint32, bool) {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st.Uid, ok
}

// procStart is when process pid started, in clock ticks since boot: with
// the boot, what tells it from a later process of the same pid.
func procStart(pid int) (uint64, error) {
	s, err := readStat(pid)
	return s.startTicks, err
}

// bootID names this boot of the machine; "" if unknown.
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// processes lists the live (not zombie) processes of group pgid.
func processes(pgid int) []procStat {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	var ps []procStat
	for {
		names, err := d.Readdirnames(256)
		for _, name := range names {
			pid, err := strconv.Atoi(name)
			if err != nil {
				continue
			}
			if s, err := readStat(pid); err == nil && s.pgrp == pgid && s.state != 'Z' && s.state != 'X' {
				ps = append(ps, s)
			}
		}
		if err == io.EOF || err != nil {
			return ps
		}
	}
}

// groupMembers lists the live processes of group pgid if it is the group a
// job's shell, started at leaderTicks as uid, made: every process of it
// runs as uid, started no earlier than the shell, and the leader, if still
// there, is the shell. (While any process is in group pgid, no new process
// takes pgid as its pid.)
func groupMembers(pgid int, leaderTicks uint64, uid uint32) []int {
	var pids []int
	for _, s := range processes(pgid) {
		u, ok := owner(s.pid)
		if !ok {
			continue // gone meanwhile
		}
		if u != uid || s.startTicks < leaderTicks {
			return nil
		}
		pids = append(pids, s.pid)
	}
	if len(pids) > 0 {
		if s, err := readStat(pgid); err == nil && s.state != 'Z' && s.startTicks != leaderTicks {
			return nil
		}
	}
	return pids
}

// awaitGroup waits, at most for d, until no live process is left in group
// pgid: SIGKILL takes effect when a process is next scheduled, and a GPU is
// free once the process holding it is gone.
func awaitGroup(pgid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for len(processes(pgid)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// lockFile takes an exclusive lock on path, held until the Closer is
// closed (or the process ends).
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("local: another executor uses %s", path)
		}
		return nil, fmt.Errorf("local: lock %s: %w", path, err)
	}
	return f, nil
}
