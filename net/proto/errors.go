package proto

import (
	"errors"
	"fmt"
)

// Code is the status a responder gives a request it does not answer.
type Code uint8

const (
	codeOK Code = 0
	// CodeBadRequest: the request did not parse or was too large.
	CodeBadRequest Code = 1
	// CodeRefused: the responder will not do it (expired, over-used or forged
	// invite, not a member, ...).
	CodeRefused Code = 2
	// CodeNotFound: unknown group, no KeyPackage for that suite, nothing to sync.
	CodeNotFound Code = 3
	// CodeUnavailable: busy or not ready; try later or another member.
	CodeUnavailable Code = 4
	// CodeInternal: the responder failed; the reason is not disclosed.
	CodeInternal Code = 5
)

// Sentinels for the codes, for errors.Is on a *RemoteError, and for handlers to
// return (wrapped or not) when they have no reason text to give.
var (
	ErrBadRequest  = errors.New("proto: bad request")
	ErrRefused     = errors.New("proto: refused")
	ErrNotFound    = errors.New("proto: not found")
	ErrUnavailable = errors.New("proto: unavailable")
	ErrInternal    = errors.New("proto: internal error at the peer")
)

var codeErrs = map[Code]error{
	CodeBadRequest:  ErrBadRequest,
	CodeRefused:     ErrRefused,
	CodeNotFound:    ErrNotFound,
	CodeUnavailable: ErrUnavailable,
	CodeInternal:    ErrInternal,
}

// RemoteError is a refusal: the peer answered with an error code. A handler
// returns one to choose the code and the reason text the requester sees; a
// requester gets one back from Client's methods.
type RemoteError struct {
	Code   Code
	Reason string
}

// Refuse returns a *RemoteError a handler can return.
func Refuse(code Code, reason string) error {
	return &RemoteError{Code: code, Reason: reason}
}

func (e *RemoteError) Error() string {
	base := "proto: peer answered with code " + fmt.Sprint(uint8(e.Code))
	if s := codeErrs[e.Code]; s != nil {
		base = s.Error()
	}
	if e.Reason == "" {
		return base
	}
	return base + ": " + e.Reason
}

// Unwrap returns the sentinel of the code (nil for an unknown code).
func (e *RemoteError) Unwrap() error { return codeErrs[e.Code] }

// errorResponse maps a handler's error to what the requester is told. Only a
// *RemoteError's reason is disclosed; other errors are reduced to their code.
func errorResponse(err error) (Code, string) {
	if re, ok := errors.AsType[*RemoteError](err); ok && re.Code != codeOK {
		return re.Code, re.Reason
	}
	for code, s := range codeErrs {
		if errors.Is(err, s) {
			return code, ""
		}
	}
	return CodeInternal, ""
}
