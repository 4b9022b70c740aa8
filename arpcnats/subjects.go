package arpcnats

import "strings"

// Subjects and keys, all namespaced by the machine id. See the package doc.
const subjectPrefix = "arpc."

func subjMut(id string) string     { return subjectPrefix + id + ".mut" }
func subjMutNS(id string) string   { return subjectPrefix + id + ".mutns" }
func subjUpd(id string) string     { return subjectPrefix + id + ".upd" }
func subjReq(id string) string     { return subjectPrefix + id + ".req" }
func subjGet(id string) string     { return subjectPrefix + id + ".get" }
func subjWaitReg(id string) string { return subjectPrefix + id + ".wait.reg" }

func keyState(id string) string      { return id + ".state" }
func keyLease(id string) string      { return id + ".lease" }
func keyWait(id, wait string) string { return id + ".wait." + wait }
func keyWaitFilter(id string) string { return id + ".wait.*" }

// validID tells whether s can be a machine or wait id: 1..128 letters,
// digits, '-' or '_', so it is one subject token and a valid KV key part.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validSubject tells whether s can be published to: at most 256 bytes of
// non-empty tokens separated by '.', without wildcards or white space.
func validSubject(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return false
		}
	}
	return true
}
