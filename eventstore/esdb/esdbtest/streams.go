package esdbtest

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	streamsapi "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type streamsService struct {
	streamsapi.UnimplementedStreamsServer
	s *Server
}

// ---- append ----

func (svc *streamsService) Append(stream streamsapi.Streams_AppendServer) error {
	svc.s.appendReqs.Add(1)
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the first append message must carry the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" {
		return status.Error(codes.InvalidArgument, "stream name is required")
	}
	var expected int64
	switch rev := opts.GetExpectedStreamRevision().(type) {
	case *streamsapi.AppendReq_Options_Revision:
		expected = int64(rev.Revision)
	case *streamsapi.AppendReq_Options_NoStream:
		expected = expectNoStream
	case *streamsapi.AppendReq_Options_Any:
		expected = expectAny
	case *streamsapi.AppendReq_Options_StreamExists:
		expected = expectStreamExists
	default:
		return status.Error(codes.InvalidArgument, "expected stream revision is required")
	}
	var evs []proposed
	size := 0
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		id, ok := fromProtoUUID(pm.GetId())
		if !ok {
			return status.Error(codes.InvalidArgument, "proposed message without a valid id")
		}
		typ, ok := pm.GetMetadata()["type"]
		if !ok {
			return missingMetadata("type")
		}
		ctype, ok := pm.GetMetadata()["content-type"]
		if !ok {
			return missingMetadata("content-type")
		}
		size += len(pm.GetData()) + len(pm.GetCustomMetadata()) + 2*len(typ)
		if size > svc.s.opts.MaxAppendSize {
			stream.SetTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded",
				"maximum-append-size", strconv.Itoa(svc.s.opts.MaxAppendSize)))
			return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", svc.s.opts.MaxAppendSize)
		}
		evs = append(evs, proposed{id: id, typ: typ, ctype: ctype, data: pm.GetData(), meta: pm.GetCustomMetadata()})
	}

	svc.s.mu.Lock()
	res := svc.s.commit(name, expected, evs)
	svc.s.mu.Unlock()

	if !res.wrong && take(&svc.s.loseAnswers) {
		return svc.s.notLeaderAnswer(stream)
	}
	if res.wrong {
		w := &streamsapi.AppendResp_WrongExpectedVersion{}
		switch {
		case expected == expectAny:
			w.ExpectedRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
			w.ExpectedRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
		case expected == expectStreamExists:
			w.ExpectedRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
			w.ExpectedRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
		case expected == expectNoStream:
			w.ExpectedRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
			w.ExpectedRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: ^uint64(0)}
		default:
			w.ExpectedRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(expected)}
			w.ExpectedRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: uint64(expected)}
		}
		if res.current < 0 {
			w.CurrentRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
			w.CurrentRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
		} else {
			w.CurrentRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(res.current)}
			w.CurrentRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(res.current)}
		}
		return stream.SendAndClose(&streamsapi.AppendResp{Result: &streamsapi.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}})
	}
	ok := &streamsapi.AppendResp_Success{}
	if res.current < 0 {
		ok.CurrentRevisionOption = &streamsapi.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		ok.CurrentRevisionOption = &streamsapi.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(res.current)}
	}
	if res.pos == 0 {
		ok.PositionOption = &streamsapi.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	} else {
		ok.PositionOption = &streamsapi.AppendResp_Success_Position{Position: &streamsapi.AppendResp_Position{
			CommitPosition: res.pos, PreparePosition: res.pos}}
	}
	return stream.SendAndClose(&streamsapi.AppendResp{Result: &streamsapi.AppendResp_Success_{Success: ok}})
}

func missingMetadata(key string) error {
	return status.Errorf(codes.InvalidArgument, "Required Metadata Property '%s' is missing", key)
}

// ---- read ----

func (svc *streamsService) Read(req *streamsapi.ReadReq, out streamsapi.Streams_ReadServer) error {
	opts := req.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "read options are required")
	}
	if opts.GetUuidOption() == nil {
		return status.Error(codes.InvalidArgument, "uuid option is required")
	}
	r := reader{s: svc.s, out: out, strUUID: opts.GetUuidOption().GetString_() != nil}
	f, err := newFilter(opts.GetFilter())
	if err != nil {
		return err
	}
	backwards := opts.GetReadDirection() == streamsapi.ReadReq_Options_Backwards
	switch {
	case opts.GetSubscription() != nil:
		if backwards {
			return status.Error(codes.InvalidArgument, "subscriptions read forwards")
		}
		if opts.GetAll() == nil {
			return status.Error(codes.Unimplemented, "stream subscriptions are not implemented by the esdbtest test double")
		}
		return r.subscribeAll(opts.GetAll(), f)
	case opts.GetStream() != nil:
		if f != nil {
			return status.Error(codes.InvalidArgument, "stream reads take no filter")
		}
		return r.readStream(opts.GetStream(), backwards, opts.GetCount())
	case opts.GetAll() != nil:
		return r.readAll(opts.GetAll(), backwards, opts.GetCount(), f)
	}
	return status.Error(codes.InvalidArgument, "a stream or $all is required")
}

type reader struct {
	s       *Server
	out     streamsapi.Streams_ReadServer
	strUUID bool
}

func (r reader) send(rec *record, withPosition bool) error {
	ev := &streamsapi.ReadResp_ReadEvent{Event: recordedEvent(rec, r.strUUID)}
	if withPosition {
		ev.Position = &streamsapi.ReadResp_ReadEvent_CommitPosition{CommitPosition: rec.pos}
	} else {
		ev.Position = &streamsapi.ReadResp_ReadEvent_NoPosition{NoPosition: &shared.Empty{}}
	}
	return r.out.Send(&streamsapi.ReadResp{Content: &streamsapi.ReadResp_Event{Event: ev}})
}

func (r reader) readStream(o *streamsapi.ReadReq_Options_StreamOptions, backwards bool, count uint64) error {
	name := string(o.GetStreamIdentifier().GetStreamName())
	r.s.mu.Lock()
	evs := r.s.streams[name] // append-only: the prefix we see never changes
	r.s.mu.Unlock()
	if len(evs) == 0 {
		return r.out.Send(&streamsapi.ReadResp{Content: &streamsapi.ReadResp_StreamNotFound_{
			StreamNotFound: &streamsapi.ReadResp_StreamNotFound{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)}}}})
	}
	last := uint64(len(evs) - 1)
	var from uint64
	switch rev := o.GetRevisionOption().(type) {
	case *streamsapi.ReadReq_Options_StreamOptions_Start:
		from = 0
	case *streamsapi.ReadReq_Options_StreamOptions_End:
		if !backwards {
			return nil
		}
		from = last
	case *streamsapi.ReadReq_Options_StreamOptions_Revision:
		from = rev.Revision
	default:
		return status.Error(codes.InvalidArgument, "a stream revision option is required")
	}
	if backwards {
		if from > last {
			from = last
		}
		for i, n := int64(from), uint64(0); i >= 0 && n < count; i, n = i-1, n+1 {
			if err := r.send(evs[i], false); err != nil {
				return err
			}
		}
		return nil
	}
	for i, n := from, uint64(0); i <= last && n < count; i, n = i+1, n+1 {
		if err := r.send(evs[i], false); err != nil {
			return err
		}
	}
	return nil
}

func (r reader) readAll(o *streamsapi.ReadReq_Options_AllOptions, backwards bool, count uint64, f *filter) error {
	r.s.mu.Lock()
	log := r.s.log
	var i int
	switch p := o.GetAllOption().(type) {
	case *streamsapi.ReadReq_Options_AllOptions_Start:
		i = 0
		if backwards {
			i = -1
		}
	case *streamsapi.ReadReq_Options_AllOptions_End:
		i = len(log)
		if backwards {
			i = len(log) - 1
		}
	case *streamsapi.ReadReq_Options_AllOptions_Position:
		pos := p.Position.GetCommitPosition()
		if backwards {
			i = r.s.after(pos-1) - 1 // the last event strictly before pos
			if pos == 0 {
				i = -1
			}
		} else {
			i = r.s.after(pos - 1) // from pos itself: $all reads include it
			if pos == 0 {
				i = 0
			}
		}
	default:
		r.s.mu.Unlock()
		return status.Error(codes.InvalidArgument, "an $all position option is required")
	}
	r.s.mu.Unlock()
	for n := uint64(0); n < count && i >= 0 && i < len(log); {
		rec := log[i]
		if backwards {
			i--
		} else {
			i++
		}
		if f != nil && !f.match(rec) {
			continue
		}
		if err := r.send(rec, true); err != nil {
			return err
		}
		n++
	}
	return nil
}

func (r reader) subscribeAll(o *streamsapi.ReadReq_Options_AllOptions, f *filter) error {
	ctx := r.out.Context()
	r.s.mu.Lock()
	drop := r.s.drop
	var next int // index in the log of the next event to examine
	switch p := o.GetAllOption().(type) {
	case *streamsapi.ReadReq_Options_AllOptions_Start:
		next = 0
	case *streamsapi.ReadReq_Options_AllOptions_End:
		next = len(r.s.log)
	case *streamsapi.ReadReq_Options_AllOptions_Position:
		next = r.s.after(p.Position.GetCommitPosition()) // strictly after
	default:
		r.s.mu.Unlock()
		return status.Error(codes.InvalidArgument, "an $all position option is required")
	}
	r.s.mu.Unlock()

	if err := r.out.Send(&streamsapi.ReadResp{Content: &streamsapi.ReadResp_Confirmation{
		Confirmation: &streamsapi.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	interval := 0
	if f != nil {
		interval = f.checkpointEvery
	}
	examined := 0
	caughtUp := false
	for {
		r.s.mu.Lock()
		log, changed := r.s.log, r.s.changed
		r.s.mu.Unlock()
		if next >= len(log) {
			if !caughtUp {
				caughtUp = true
				if err := r.out.Send(&streamsapi.ReadResp{Content: &streamsapi.ReadResp_CaughtUp_{
					CaughtUp: &streamsapi.ReadResp_CaughtUp{}}}); err != nil {
					return err
				}
			}
			select {
			case <-changed:
				continue
			case <-drop:
				return status.Error(codes.Unavailable, "subscription dropped by the esdbtest test double")
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			}
		}
		for ; next < len(log); next++ {
			select {
			case <-drop:
				return status.Error(codes.Unavailable, "subscription dropped by the esdbtest test double")
			default:
			}
			rec := log[next]
			if f == nil || f.match(rec) {
				if err := r.send(rec, true); err != nil {
					return err
				}
			}
			if examined++; interval > 0 && examined >= interval {
				examined = 0
				if err := r.out.Send(&streamsapi.ReadResp{Content: &streamsapi.ReadResp_Checkpoint_{
					Checkpoint: &streamsapi.ReadResp_Checkpoint{CommitPosition: rec.pos, PreparePosition: rec.pos}}}); err != nil {
					return err
				}
			}
		}
	}
}

// ---- filters ----

type filter struct {
	onType          bool // event type, else stream name
	re              *regexp.Regexp
	prefixes        []string
	checkpointEvery int
}

func newFilter(o *streamsapi.ReadReq_Options_FilterOptions) (*filter, error) {
	if o == nil {
		return nil, nil
	}
	f := &filter{}
	var expr *streamsapi.ReadReq_Options_FilterOptions_Expression
	switch {
	case o.GetEventType() != nil:
		f.onType, expr = true, o.GetEventType()
	case o.GetStreamIdentifier() != nil:
		expr = o.GetStreamIdentifier()
	default:
		return nil, status.Error(codes.InvalidArgument, "a filter needs an event type or stream expression")
	}
	if expr.GetRegex() != "" {
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("filter regex: %v", err))
		}
		f.re = re
	} else {
		f.prefixes = expr.GetPrefix()
	}
	window := 32
	if o.GetMax() > 0 {
		window = int(o.GetMax())
	}
	mult := int(o.GetCheckpointIntervalMultiplier())
	if mult <= 0 {
		mult = 1
	}
	f.checkpointEvery = window * mult
	return f, nil
}

func (f *filter) match(r *record) bool {
	s := r.stream
	if f.onType {
		s = r.typ
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// ---- conversions ----

func recordedEvent(r *record, strUUID bool) *streamsapi.ReadResp_ReadEvent_RecordedEvent {
	return &streamsapi.ReadResp_ReadEvent_RecordedEvent{
		Id:               protoUUID(r.id, strUUID),
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
		StreamRevision:   r.rev,
		PreparePosition:  r.pos,
		CommitPosition:   r.pos,
		Metadata: map[string]string{
			"type":         r.typ,
			"content-type": r.ctype,
			"created":      strconv.FormatInt(r.created, 10),
		},
		CustomMetadata: r.meta,
		Data:           r.data,
	}
}

func protoUUID(id uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	var most, least int64
	for i := 0; i < 8; i++ {
		most = most<<8 | int64(id[i])
		least = least<<8 | int64(id[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits: most, LeastSignificantBits: least}}}
}

func fromProtoUUID(u *shared.UUID) (uuid.UUID, bool) {
	if st := u.GetStructured(); st != nil {
		var id uuid.UUID
		most, least := uint64(st.GetMostSignificantBits()), uint64(st.GetLeastSignificantBits())
		for i := 7; i >= 0; i-- {
			id[i], id[8+i] = byte(most), byte(least)
			most, least = most>>8, least>>8
		}
		return id, true
	}
	id, err := uuid.Parse(u.GetString_())
	return id, err == nil
}
