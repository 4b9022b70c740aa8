package rpc

// AwaitingAnswers counts the requests of w whose Add has been replied to
// and that wait only for their answers.
func AwaitingAnswers(w *Worker) int {
	w.reqs.mu.Lock()
	defer w.reqs.mu.Unlock()
	n := 0
	for _, cr := range w.reqs.byID {
		if cr.replied {
			n++
		}
	}
	return n
}
