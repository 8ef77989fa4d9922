package executor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/gaas-io/gaas/gaas"
)

// TailFile reads the last maxBytes bytes of the log at path, and whether
// any came before them; a missing file is gaas.ErrNotFound. A job may
// write where its log is kept: the file must be a regular file with one
// link, and a symbolic link is not followed, so that a job cannot make its
// log another file that the server would read for it.
func TailFile(path string, maxBytes int64) (tail []byte, truncated bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("log %s: %w", path, gaas.ErrNotFound)
	}
	if err != nil {
		return nil, false, fmt.Errorf("log %s: not a file the server reads: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("log %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || links(fi) != 1 {
		return nil, false, fmt.Errorf("log %s: not a regular file of one link", path)
	}
	size := fi.Size() // the job may write more meanwhile: read up to here
	from := max(size-max(maxBytes, 0), 0)
	tail = make([]byte, size-from)
	n, err := f.ReadAt(tail, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("log %s: %w", path, err)
	}
	return tail[:n], from > 0, nil
}
