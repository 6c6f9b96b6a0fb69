package backup

// SetOplogNamespace points s's oplog capture at another namespace than
// local.oplog.rs, so that a test can overrun a small capped collection of its
// own on a server whose real oplog it cannot shrink.
func SetOplogNamespace(s *Source, ns string) { s.oplogNS = ns }
