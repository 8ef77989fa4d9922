//go:build !cgosqlite && linux && (386 || amd64 || arm || arm64)

package store

import (
	"sync"

	"modernc.org/libc"
)

// keepAllocatorPages holds one block of every small size class of the
// allocator behind the pure-Go SQLite, for the life of the process.
//
// That allocator maps a 64 KiB page for a size class when the class has no
// free block, and unmaps the page as soon as its last block is freed. A
// B-tree page split allocates a scratch buffer of about 10 KiB and frees it
// at once, so every split cost an mmap, an munmap and the page faults of a
// fresh mapping: a tenth of the writer's time under the submission load. A
// block that is never freed keeps one page of each class mapped, at a cost
// of one page per class (under 1 MiB).
var keepAllocatorPages = sync.OnceFunc(func() {
	tls := libc.NewTLS()
	defer tls.Close()
	for log := 4; log <= 14; log++ { // 16 B to 16 KiB, the allocator's shared classes
		libc.Xmalloc(tls, libc.Tsize_t(1<<log))
	}
})
