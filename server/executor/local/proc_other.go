//go:build !linux

package local

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// The executor holds jobs by their process groups, Pdeathsig and /proc:
// Linux's.
const noFollow = 0

func supported() error { return errors.New("local: the local executor runs jobs only on Linux") }

func sysProcAttr(account) *syscall.SysProcAttr { return nil }
func signalGroup(int, syscall.Signal)          {}
func waitExited(int) error                     { return supported() }
func exitOf(*os.ProcessState) (code, sig int)  { return -1, 0 }
func procStart(int) (uint64, error)            { return 0, supported() }
func bootID() string                           { return "" }
func groupMembers(int, uint64, uint32) []int   { return nil }
func awaitGroup(int, time.Duration)            {}
func lockFile(string) (*os.File, error)        { return nil, supported() }
