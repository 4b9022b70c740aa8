// Command select shows am.Select across machines: a process waits on
// states of two remote machines and a timer, whichever comes first; then 10
// consumers, each with its own aRPC client, take 1,000 jobs from one remote
// machine with am.Take, and every job is taken by exactly one of them. A
// take carries a precondition on the source's clock (the tick of the job it
// saw), so of the consumers that race for a job one gets it and the others
// go back to waiting: no job is lost or taken twice.
package main
