//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// descriptorLimit is the most files the process may hold open. (Go raises
// the soft limit to the hard one at start-up.)
func descriptorLimit() (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the descriptor limit: %w", err)
	}
	return int(min(lim.Cur, 1<<24)), nil
}
