package proxy

import (
	"net"
	"sync"
)

// maxPlaintext is the most a TLS record carries (RFC 8446 §5.1).
const maxPlaintext = 16 << 10

// batchSize is how many bytes of TLS records batchConn gathers per socket
// write: sixteen full records (payload plus header and tag each).
const batchSize = 16 * (maxPlaintext + 64)

// batchConn sits under the client's tls.Conn. crypto/tls writes every
// record (at most 16 KiB) with its own Write, which for a 10 MiB Fetch
// response means 640 syscalls; inside a batch (see session.write) the
// records gather in a pooled buffer and reach the socket batchSize bytes at
// a time. Outside a batch, writes go straight through, so the TLS
// handshake, alerts and small responses behave as without it, and an idle
// connection holds no buffer.
//
// crypto/tls serializes its own writes; mu also orders them against begin
// and end, which the relay's writer calls outside the TLS lock.
type batchConn struct {
	net.Conn
	pool *sync.Pool // *[]byte of batchSize capacity

	mu  sync.Mutex
	buf *[]byte // non-nil inside a batch
	err error   // the first failed socket write of the batch
}

// begin starts gathering writes.
func (c *batchConn) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		c.buf = c.pool.Get().(*[]byte)
		*c.buf = (*c.buf)[:0]
	}
}

// end writes what was gathered, returns the buffer to the pool, and reports
// the first write error of the batch.
func (c *batchConn) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return nil
	}
	c.flushLocked()
	c.pool.Put(c.buf)
	c.buf = nil
	err := c.err
	c.err = nil
	return err
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return c.Conn.Write(p)
	}
	if c.err != nil {
		return 0, c.err
	}
	b := *c.buf
	if len(b)+len(p) > cap(b) {
		if c.flushLocked(); c.err != nil {
			return 0, c.err
		}
		b = *c.buf
		if len(p) > cap(b) {
			if _, err := c.Conn.Write(p); err != nil {
				c.err = err
				return 0, err
			}
			return len(p), nil
		}
	}
	*c.buf = append(b, p...)
	return len(p), nil
}

// flushLocked writes the gathered bytes; a failure is kept in c.err.
func (c *batchConn) flushLocked() {
	if len(*c.buf) > 0 && c.err == nil {
		_, c.err = c.Conn.Write(*c.buf)
	}
	*c.buf = (*c.buf)[:0]
}
