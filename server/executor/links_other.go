//go:build !unix

package executor

import "io/fs"

// noFollow is nothing where the system has no such flag.
const noFollow = 0

// links is 1 where the system does not tell.
func links(fs.FileInfo) uint64 { return 1 }
