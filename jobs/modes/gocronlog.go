package modes

import "go.uber.org/zap"

// gocronLogger sends gocron's key/value logs to zap.
type gocronLogger struct{ s *zap.SugaredLogger }

func (l gocronLogger) Debug(msg string, args ...any) { l.s.Debugw(msg, args...) }
func (l gocronLogger) Info(msg string, args ...any)  { l.s.Debugw(msg, args...) } // gocron's info is chatter for us
func (l gocronLogger) Warn(msg string, args ...any)  { l.s.Warnw(msg, args...) }
func (l gocronLogger) Error(msg string, args ...any) { l.s.Errorw(msg, args...) }
