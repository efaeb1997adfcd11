package proxy

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// connLog logs with a connection's fields (conn_id, remote_addr, and once
// authenticated principal and mechanism). zap's With would encode them
// ahead into a buffer of about 1 KiB held for the connection's life; a
// connection logs a few lines, so they are added to each line instead.
type connLog struct {
	base   *zap.Logger
	fields []zap.Field
}

// with adds fields to every later line.
func (l *connLog) with(f ...zap.Field) {
	l.fields = append(l.fields[:len(l.fields):len(l.fields)], f...)
}

func (l *connLog) Debug(msg string, f ...zap.Field) { l.write(zapcore.DebugLevel, msg, f) }
func (l *connLog) Info(msg string, f ...zap.Field)  { l.write(zapcore.InfoLevel, msg, f) }
func (l *connLog) Warn(msg string, f ...zap.Field)  { l.write(zapcore.WarnLevel, msg, f) }
func (l *connLog) Error(msg string, f ...zap.Field) { l.write(zapcore.ErrorLevel, msg, f) }

func (l *connLog) write(level zapcore.Level, msg string, f []zap.Field) {
	if ce := l.base.Check(level, msg); ce != nil {
		ce.Write(append(l.fields[:len(l.fields):len(l.fields)], f...)...)
	}
}
