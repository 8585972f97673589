package lock

// NoIfeq reports whether l gave up SET ... IFEQ renewals (see
// Lock.refreshIfeq).
func NoIfeq(l *Locker) bool { return l.noIfeq.Load() }
