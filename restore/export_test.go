package restore

// SetReplayTimedOut makes a restore with o call f when a replayed write
// got no answer within the operation timeout, before it pings the server.
func SetReplayTimedOut(o *Options, f func()) { o.replayTimedOut = f }
