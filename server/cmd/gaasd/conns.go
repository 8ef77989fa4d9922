package main

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimit caps the connections a server holds open, so that idle
// keep-alive connections cannot use up the process's file descriptors and
// stop accept (and the database, which needs descriptors too). When every
// slot is taken it closes the connection that has been idle the longest to
// make room; when none is idle, new connections wait in the kernel's
// backlog until one closes. Room is made before the next connection
// arrives, since Accept cannot know when it will, so at the cap one idle
// connection is closed early; keep-alive clients expect a server to close
// idle connections, and open another. Set the server's ConnState to its
// connState.
type connLimit struct {
	net.Listener
	max int

	changed chan struct{} // a slot was freed or a connection went idle
	done    chan struct{}
	close   sync.Once

	mu   sync.Mutex
	open int
	idle map[*limitedConn]time.Time
}

func limitConns(ln net.Listener, max int) *connLimit {
	return &connLimit{Listener: ln, max: max, changed: make(chan struct{}, 1), done: make(chan struct{}),
		idle: map[*limitedConn]time.Time{}}
}

// Accept waits for a slot, then for a connection.
func (l *connLimit) Accept() (net.Conn, error) {
	for !l.take() {
		if l.closeIdlest() {
			continue
		}
		select {
		case <-l.changed:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

func (l *connLimit) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *connLimit) take() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		return false
	}
	l.open++
	return true
}

func (l *connLimit) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
	l.signal()
}

func (l *connLimit) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// closeIdlest closes the connection idle the longest, if any. Its slot is
// free when this returns.
func (l *connLimit) closeIdlest() bool {
	l.mu.Lock()
	var (
		oldest *limitedConn
		since  time.Time
	)
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.idle, oldest)
	l.mu.Unlock()
	if oldest == nil {
		return false
	}
	oldest.Close()
	return true
}

// connState keeps track of which connections are idle between requests.
func (l *connLimit) connState(c net.Conn, state http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	if state == http.StateIdle {
		l.idle[lc] = time.Now()
	} else {
		delete(l.idle, lc)
	}
	l.mu.Unlock()
	if state == http.StateIdle {
		l.signal()
	}
}

// limitedConn gives its slot back when it is closed, once.
type limitedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.idle, c)
		c.l.mu.Unlock()
		c.l.release()
	})
	return err
}
