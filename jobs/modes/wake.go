package modes

import "go.uber.org/zap"

// wakeLoop runs the jobs of the secrets the sources wake, until Stop.
func (d *Daemon) wakeLoop() {
	for {
		select {
		case <-d.quit:
			return
		case <-d.wake.Ready():
		}
		for _, name := range d.wake.Take() {
			d.runNow(name)
		}
	}
}

// runNow runs name's job at once; a run in flight syncs once more at its
// end instead.
func (d *Daemon) runNow(name string) {
	d.mu.Lock()
	e, ok := d.entries[name]
	d.mu.Unlock()
	if !ok {
		return
	}
	e.rs.woken.Store(true)
	if e.rs.busy.Load() {
		select { // a run waiting its tail syncs again at once
		case e.rs.kick <- struct{}{}:
		default:
		}
		return
	}
	for _, j := range d.sched.Jobs() {
		if j.ID() == e.id {
			if err := j.RunNow(); err != nil {
				d.log.Warn("could not run a woken secret's job now; it runs at its next refresh",
					zap.String("secret_name", name), zap.Error(err))
			}
			return
		}
	}
}
