//go:build cgosqlite || !linux || !(386 || amd64 || arm || arm64)

package store

// keepAllocatorPages is needed only with the pure-Go SQLite on Linux; see
// sqlite_memory.go.
func keepAllocatorPages() {}
