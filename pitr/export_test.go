package pitr

// SetOplogNamespace points c's slicer at another namespace than
// local.oplog.rs, so that a test can use one that a real server lacks.
func SetOplogNamespace(c *Config, ns string) { c.oplogNS = ns }
