//go:build unix

package executor

import (
	"io/fs"
	"syscall"
)

// noFollow opens a file only if it is not a symbolic link, and a FIFO
// without waiting for a writer.
const noFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// links is the number of hard links of the file fi describes.
func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
