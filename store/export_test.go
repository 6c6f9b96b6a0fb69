package store

// setCommitHook makes s call hook at each step of a Commit; see
// DirStore.commitHook. Tests only.
func (s *DirStore) setCommitHook(hook func(step string)) { s.commitHook = hook }
