package notify

// Discard runs no actions. It is the change notifier of a graph whose
// writes are no news to anyone (`once` writes files before the
// application starts).
type Discard struct{}

// Changed does nothing.
func (Discard) Changed(Change) {}
