package app

import (
	"context"
	"errors"
	"time"

	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

// answer gets the assistant's answer to j, split into message parts, or the
// polite text that replaces it. It returns an error only when ctx ended
// (the service is being stopped), leaving nothing to deliver.
func (s *MessagesService) answer(ctx context.Context, j *job) ([]string, error) {
	thread, err := s.thread(ctx, j.msg.From)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		j.log.Error("message not processed: thread lookup failed", "err", err)
		if errors.Is(err, ports.ErrUnavailable) {
			return []string{textUnavailable}, nil
		}
		return []string{textApology}, nil
	}
	text, err := s.reply(ctx, j, thread)
	if errors.Is(err, ports.ErrNotFound) && ctx.Err() == nil {
		j.log.Warn("the assistant no longer knows the user's thread: starting a new one", "thread", thread)
		thread, err = s.replaceThread(ctx, j.msg.From, thread)
		if err == nil {
			text, err = s.reply(ctx, j, thread)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		j.log.Error("assistant failed", "thread", thread, "err", err)
		return []string{textApology}, nil
	}
	parts := domain.SplitMessage(text, s.limits.MaxChars)
	if len(parts) == 0 {
		j.log.Error("assistant gave an empty answer", "thread", thread)
		return []string{textApology}, nil
	}
	return parts, nil
}

// reply asks the assistant for its answer to j's message on thread, with
// the tools of the user's channel, and tells the hook. The model may call
// the user's tools for at most Tools.MaxCallsPerTurn rounds; a loop past
// that ends in ErrAssistantFailed (the user then gets the apology).
func (s *MessagesService) reply(ctx context.Context, j *job, thread string) (string, error) {
	start := time.Now()
	req := ports.ChatRequest{ThreadID: thread, Text: j.msg.Body, MCP: s.tools.MCP, MaxToolRounds: s.tools.maxCalls()}
	if s.tools.Runner != nil {
		ch := chatChannel(j.msg.From)
		req.Tools = s.tools.Runner.Tools(ch)
		req.RunTool = func(ctx context.Context, call ports.ToolCall) ports.ToolResult {
			return s.tools.run(ctx, ports.ToolRequest{Call: call, Channel: ch, User: j.msg.From}, j.log)
		}
	}
	answer, err := s.assistant.Reply(ctx, req)
	if s.hooks.AssistantReplied != nil {
		s.hooks.AssistantReplied(time.Since(start), err)
	}
	return answer, err
}

// replaceThread gives user a new thread in place of old, which the
// assistant no longer knows, and returns the user's thread: the new one,
// or the one a concurrent caller (in any process) replaced old with first.
func (s *MessagesService) replaceThread(ctx context.Context, user, old string) (string, error) {
	id, err := s.assistant.NewThread(ctx)
	if err != nil {
		return "", err
	}
	return s.threads.ReplaceThread(ctx, user, old, id)
}

// thread returns the user's thread, creating it on first use. The store
// decides between concurrent creators (across processes too): every caller
// uses the thread it returns.
func (s *MessagesService) thread(ctx context.Context, user string) (string, error) {
	id, err := s.threads.Thread(ctx, user)
	if !errors.Is(err, ports.ErrNotFound) {
		return id, err
	}
	id, err = s.assistant.NewThread(ctx)
	if err != nil {
		return "", err
	}
	return s.threads.SaveThread(ctx, user, id)
}
