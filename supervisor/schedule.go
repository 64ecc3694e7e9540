package supervisor

// schedule restarts an app on a cron schedule or when watched files change.
type schedule struct {
	stop chan struct{}
	done chan struct{}
}

func (s *Server) startSchedule(a *app)   {}
func (s *Server) stopSchedule(a *app)    {}
func (s *Server) restartSchedule(a *app) {}
