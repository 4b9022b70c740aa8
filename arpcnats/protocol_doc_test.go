package arpcnats

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// protocolSection returns the NATS section of the repository's
// PROTOCOL.md, which is normative: the checks below keep it naming what
// the code puts on the wire and in the bucket.
func protocolSection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	const head = "\n## Layer 3: aRPC over NATS\n"
	i := strings.Index(doc, head)
	if i < 0 {
		t.Fatalf("PROTOCOL.md has no %q section", strings.TrimSpace(head))
	}
	sec := doc[i+len(head):]
	if j := strings.Index(sec, "\n## "); j >= 0 {
		sec = sec[:j]
	}
	return sec
}

// Every subject and key the code uses is named in the section, and the
// section names no other.
func TestProtocolDocSubjectsAndKeys(t *testing.T) {
	sec := protocolSection(t)
	const id, wait = "<id>", "<wait id>"
	subjects := []string{subjMut(id), subjMutNS(id), subjReq(id), subjGet(id), subjWaitReg(id), subjUpd(id)}
	keys := []string{keyState(id), keyLease(id), keyWait(id, wait), keyWaitFilter(id)}
	known := map[string]bool{subjectPrefix + id + ".": true} // the prefix itself
	for _, name := range append(append([]string(nil), subjects...), keys...) {
		known[name] = true
		if !strings.Contains(sec, "`"+name+"`") {
			t.Errorf("PROTOCOL.md's NATS section doesn't name `%s`", name)
		}
	}
	for _, m := range regexp.MustCompile("`((?:arpc\\.)?<id>\\.[^`]*)`").FindAllStringSubmatch(sec, -1) {
		if !known[m[1]] {
			t.Errorf("PROTOCOL.md's NATS section names `%s`, which the code doesn't use", m[1])
		}
	}
}

// The magic bytes, the JSON fields of every message and stored value, and
// the outcome codes are named in the section.
func TestProtocolDocFormats(t *testing.T) {
	sec := protocolSection(t)
	for _, magic := range []string{
		fmt.Sprintf("Update = %02X ", updateMagic),
		fmt.Sprintf("MutationReply = %02X ", replyMagic),
	} {
		if !strings.Contains(strings.Join(strings.Fields(sec), " "), magic) {
			t.Errorf("PROTOCOL.md's NATS section lacks %q", magic)
		}
	}
	for _, v := range []any{mutReq{}, reqMsg{}, reqResp{}, stateDoc{}, dedupEntry{}, DurableWait{},
		WaitCase{}, WaitResult{}, waitRegResp{}} {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumField(); i++ {
			tag := typ.Field(i).Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", typ.Name(), typ.Field(i).Name)
				continue
			}
			if !strings.Contains(sec, `"`+name+`"`) {
				t.Errorf("PROTOCOL.md's NATS section lacks the field %q of %s", name, typ.Name())
			}
		}
	}
	for _, code := range []string{codeOK, codeCanceled, codeTimeout, codeQueueFull, codeDisposed,
		codePrecondition, codeUnknownState, codeInvalid, codeNotLeader, codeError} {
		if !strings.Contains(sec, "| `"+code+"` |") && !(code == "" && strings.Contains(sec, "| `\"\"` |")) {
			t.Errorf("PROTOCOL.md's NATS section has no row for the outcome code %q", code)
		}
	}
}
