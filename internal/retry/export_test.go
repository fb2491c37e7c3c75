package retry

// Waiting returns how many callers wait for a turn of p.
func (p *Pacer) Waiting() int { return p.waiting() }
