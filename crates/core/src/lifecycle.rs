//! The master's lifecycle (reference §4.1, §4.3) as a state machine: what a signal or an
//! event asks for (an [`Intent`]) takes the master from one [`State`] to the next and
//! yields the [`Effect`]s the master carries out (`master/control.rs` in the binary).
//! Pure: no signal is sent here, no clock is read; `crates/rfpm/src/master/LIFECYCLE.md`
//! draws the machine.
//!
//! ```text
//!            USR2 / crashes            QUIT                 TERM, INT
//!   Normal ───────────────▶ Reloading ─────▶ Finishing ─────────────▶ Terminating
//!     │ QUIT                   │ TERM, INT      ▲                           ▲
//!     ├────────────────────────┼────────────────┘                           │
//!     └─ TERM, INT ────────────┴────────────────────────────────────────────┘
//! ```
//!
//! A reload plans the new configuration first (`Reloading`): when the plan holds, the
//! workers are told to finish (QUIT) and the master re-executes itself at once, handing
//! them to its next image, which reaps them while its own workers already serve; when it
//! does not, the master serves on (`Normal`). Once every worker is gone, a stopping
//! master exits (Finishing, Terminating). Workers that outlive
//! `process_control_timeout` are signalled harder: QUIT, then TERM, then KILL every
//! second.
//!
//! SIGTERM is [`Intent::Stop`]: php-fpm's fast stop (Terminating), or with
//! `shutdown.drain = yes` ([`Lifecycle::new`]`(true)`) a graceful one (Finishing), which
//! is what a container runtime means by it. SIGINT stays a fast stop in both cases
//! ([`Intent::Terminate`]): it is Ctrl-C at a terminal, and the way to cut a drain short.

/// Where the master is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Serving: the process manager spawns and replaces workers.
    Normal,
    /// Reloading: the new configuration is being planned; the workers serve on.
    Reloading,
    /// Graceful stop: the workers finish their request, then the master exits.
    Finishing,
    /// Fast stop: the workers are terminated, then the master exits.
    Terminating,
}

impl State {
    /// The name php-fpm's debug messages use.
    pub fn name(self) -> &'static str {
        match self {
            State::Normal => "normal",
            State::Reloading => "reloading",
            State::Finishing => "finishing",
            State::Terminating => "terminating",
        }
    }

    /// Whether workers are started (initially, by the process manager, to replace one
    /// that died): only while serving.
    pub fn spawns(self) -> bool {
        self == State::Normal
    }

    /// Whether `self` may become `to` (a stop never turns back into a reload, a fast
    /// stop never into a graceful one).
    fn may_become(self, to: State) -> bool {
        match self {
            State::Normal => true,
            State::Reloading => matches!(to, State::Finishing | State::Terminating),
            State::Finishing => to == State::Terminating,
            State::Terminating => false,
        }
    }
}

/// The signals the master sends its workers (mapped to numbers by the binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// Finish the current request, then exit.
    Quit,
    /// Exit now.
    Term,
    /// Cannot be refused.
    Kill,
}

/// What happened, as far as the lifecycle is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// SIGINT, or a failure at start: a fast stop.
    Terminate,
    /// SIGTERM: a fast stop like [`Intent::Terminate`], or a graceful one like
    /// [`Intent::Finish`] when the lifecycle drains (`shutdown.drain`).
    Stop,
    /// SIGQUIT.
    Finish,
    /// SIGUSR2 (`announce`: log `Reloading in progress ...`), or the emergency restart
    /// (`announce: false`: its own warning was logged).
    Reload { announce: bool },
    /// The reload's plan holds: hand the workers over to the next image.
    Planned,
    /// The reload's plan does not hold (or the re-execution failed): serve on.
    ReloadFailed,
    /// `process_control_timeout` (or the second after a KILL) passed and workers remain.
    EscalationDue,
    /// The last worker is gone.
    ChildrenGone,
}

/// What the master must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Log a notice: `Terminating ...`, `Finishing ...`, `Reloading in progress ...`.
    Announce(&'static str),
    /// Log at debug level that the switch was refused (php-fpm's
    /// `not switching to '…' state, because already in '…' state`).
    Refused { to: State, from: State },
    /// Tell systemd (`RELOADING=1`, `STOPPING=1`, `READY=1` after a failed reload).
    NotifySystemd(&'static str),
    /// Plan the reload: load and validate the configuration, resolve its pools, open
    /// its new sockets; answer `Planned` or `ReloadFailed`.
    PlanReload,
    /// Send `Sig` to every worker.
    SignalChildren(Sig),
    /// Arm the escalation timer: `process_control_timeout` from now, due at the next
    /// wake-up at the earliest (`process_control_timeout = 0`).
    ArmEscalation,
    /// Arm the escalation timer again, one second from now.
    RearmEscalation,
    /// Re-execute the master's image, handing over the sockets and the draining
    /// workers (reload).
    ReExec,
    /// Remove the sockets and the pid file, say goodbye, exit 0.
    Exit,
}

/// The lifecycle: the state, the last signal sent to stop the workers, and what SIGTERM
/// means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    state: State,
    sent: Option<Sig>,
    /// `shutdown.drain`: SIGTERM ([`Intent::Stop`]) lets the workers finish.
    drain: bool,
}

impl Default for Lifecycle {
    /// php-fpm's: SIGTERM is a fast stop.
    fn default() -> Self {
        Lifecycle::new(false)
    }
}

impl Lifecycle {
    /// A master that serves; `drain` (`shutdown.drain`): SIGTERM stops it gracefully.
    pub fn new(drain: bool) -> Lifecycle {
        Lifecycle {
            state: State::Normal,
            sent: None,
            drain,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Takes `intent` into account; returns what to do, in order.
    pub fn step(&mut self, intent: Intent) -> Vec<Effect> {
        match intent {
            Intent::Terminate => self.switch(State::Terminating, true),
            Intent::Stop if self.drain => self.switch(State::Finishing, true),
            Intent::Stop => self.switch(State::Terminating, true),
            Intent::Finish => self.switch(State::Finishing, true),
            Intent::Reload { announce } => self.switch(State::Reloading, announce),
            Intent::Planned if self.state == State::Reloading => {
                vec![Effect::SignalChildren(Sig::Quit), Effect::ReExec]
            }
            Intent::ReloadFailed if self.state == State::Reloading => {
                self.state = State::Normal;
                vec![Effect::NotifySystemd("READY=1")]
            }
            Intent::Planned | Intent::ReloadFailed => Vec::new(),
            Intent::EscalationDue => self.escalate(),
            Intent::ChildrenGone => match self.state {
                State::Normal | State::Reloading => Vec::new(),
                State::Finishing | State::Terminating => vec![Effect::Exit],
            },
        }
    }

    fn switch(&mut self, to: State, announce: bool) -> Vec<Effect> {
        if self.state == to || !self.state.may_become(to) {
            return vec![Effect::Refused {
                to,
                from: self.state,
            }];
        }
        self.state = to;
        let (text, sig, systemd) = match to {
            State::Terminating => ("Terminating ...", Sig::Term, "STOPPING=1"),
            State::Finishing => ("Finishing ...", Sig::Quit, "STOPPING=1"),
            State::Reloading => {
                let mut out = Vec::with_capacity(3);
                if announce {
                    out.push(Effect::Announce("Reloading in progress ..."));
                }
                out.push(Effect::NotifySystemd("RELOADING=1"));
                out.push(Effect::PlanReload);
                return out;
            }
            State::Normal => return Vec::new(),
        };
        let mut out = Vec::with_capacity(4);
        if announce {
            out.push(Effect::Announce(text));
        }
        out.push(Effect::NotifySystemd(systemd));
        out.push(Effect::SignalChildren(sig));
        out.push(Effect::ArmEscalation);
        self.sent = Some(sig);
        out
    }

    /// QUIT → TERM → KILL, then KILL every second.
    fn escalate(&mut self) -> Vec<Effect> {
        let Some(last) = self.sent else {
            return Vec::new();
        };
        let next = if last == Sig::Quit {
            Sig::Term
        } else {
            Sig::Kill
        };
        self.sent = Some(next);
        vec![Effect::SignalChildren(next), Effect::RearmEscalation]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(state: State) -> Lifecycle {
        at_with(state, false)
    }

    fn at_with(state: State, drain: bool) -> Lifecycle {
        let mut l = Lifecycle::new(drain);
        match state {
            State::Normal => {}
            State::Reloading => {
                l.step(Intent::Reload { announce: true });
            }
            State::Finishing => {
                l.step(Intent::Finish);
            }
            State::Terminating => {
                l.step(Intent::Terminate);
            }
        }
        assert_eq!(l.state(), state);
        l
    }

    #[test]
    fn reload_plans_then_hands_the_workers_over() {
        let mut l = Lifecycle::default();
        assert_eq!(
            l.step(Intent::Reload { announce: true }),
            vec![
                Effect::Announce("Reloading in progress ..."),
                Effect::NotifySystemd("RELOADING=1"),
                Effect::PlanReload,
            ]
        );
        // The workers serve on while the plan is made: nothing waits for them.
        assert!(l.step(Intent::ChildrenGone).is_empty());
        assert_eq!(
            l.step(Intent::Planned),
            vec![Effect::SignalChildren(Sig::Quit), Effect::ReExec]
        );
    }

    #[test]
    fn a_reload_that_does_not_plan_serves_on() {
        let mut l = Lifecycle::default();
        l.step(Intent::Reload { announce: true });
        assert_eq!(
            l.step(Intent::ReloadFailed),
            vec![Effect::NotifySystemd("READY=1")]
        );
        assert_eq!(l.state(), State::Normal);
        assert!(l.state().spawns());
        // The next reload is planned again.
        assert!(l
            .step(Intent::Reload { announce: true })
            .contains(&Effect::PlanReload));
        // Outside a reload, the plan's answers mean nothing.
        let mut l = Lifecycle::default();
        assert!(l.step(Intent::Planned).is_empty());
        assert!(l.step(Intent::ReloadFailed).is_empty());
        assert_eq!(l.state(), State::Normal);
    }

    #[test]
    fn emergency_reload_is_silent() {
        let mut l = Lifecycle::default();
        let fx = l.step(Intent::Reload { announce: false });
        assert!(!fx.iter().any(|e| matches!(e, Effect::Announce(_))));
        assert_eq!(l.state(), State::Reloading);
    }

    #[test]
    fn stops_exit_when_the_workers_are_gone() {
        let mut l = Lifecycle::default();
        assert_eq!(
            l.step(Intent::Terminate),
            vec![
                Effect::Announce("Terminating ..."),
                Effect::NotifySystemd("STOPPING=1"),
                Effect::SignalChildren(Sig::Term),
                Effect::ArmEscalation,
            ]
        );
        assert_eq!(l.step(Intent::ChildrenGone), vec![Effect::Exit]);
        let mut l = at(State::Finishing);
        assert_eq!(l.step(Intent::ChildrenGone), vec![Effect::Exit]);
    }

    #[test]
    fn a_serving_master_ignores_children_gone_and_escalation() {
        let mut l = Lifecycle::default();
        assert!(l.step(Intent::ChildrenGone).is_empty());
        assert!(l.step(Intent::EscalationDue).is_empty());
        assert!(l.state().spawns());
    }

    #[test]
    fn transition_table() {
        use State::*;
        let all = [Normal, Reloading, Finishing, Terminating];
        let intents = [
            (Intent::Reload { announce: true }, Reloading),
            (Intent::Finish, Finishing),
            (Intent::Terminate, Terminating),
        ];
        let allowed = |from: State, to: State| {
            matches!(
                (from, to),
                (Normal, Reloading | Finishing | Terminating)
                    | (Reloading, Finishing | Terminating)
                    | (Finishing, Terminating)
            )
        };
        for from in all {
            if from == Normal {
                continue;
            }
            for (intent, to) in intents {
                let mut l = at(from);
                let fx = l.step(intent);
                if allowed(from, to) {
                    assert_eq!(l.state(), to, "{from:?} -> {to:?}");
                    assert!(fx.contains(&Effect::ArmEscalation));
                } else {
                    assert_eq!(l.state(), from, "{from:?} must refuse {to:?}");
                    assert_eq!(fx, vec![Effect::Refused { to, from }]);
                }
            }
        }
    }

    #[test]
    fn escalation_goes_quit_term_kill_kill() {
        let mut l = at(State::Finishing);
        let mut sent = Vec::new();
        for _ in 0..3 {
            let fx = l.step(Intent::EscalationDue);
            assert_eq!(fx.last(), Some(&Effect::RearmEscalation));
            if let Some(Effect::SignalChildren(s)) = fx.first() {
                sent.push(*s);
            }
        }
        assert_eq!(sent, vec![Sig::Term, Sig::Kill, Sig::Kill]);
        // A fast stop starts at TERM and goes to KILL.
        let mut l = at(State::Terminating);
        assert_eq!(
            l.step(Intent::EscalationDue).first(),
            Some(&Effect::SignalChildren(Sig::Kill))
        );
    }

    /// The effects of a graceful stop (`Finishing ...`, QUIT to the workers).
    fn finishing() -> Vec<Effect> {
        vec![
            Effect::Announce("Finishing ..."),
            Effect::NotifySystemd("STOPPING=1"),
            Effect::SignalChildren(Sig::Quit),
            Effect::ArmEscalation,
        ]
    }

    #[test]
    fn without_drain_sigterm_is_a_fast_stop() {
        for from in [State::Normal, State::Reloading, State::Finishing] {
            let (mut stop, mut terminate) = (at(from), at(from));
            assert_eq!(stop.step(Intent::Stop), terminate.step(Intent::Terminate));
            assert_eq!(stop, terminate);
            assert_eq!(stop.state(), State::Terminating);
        }
        let mut l = at(State::Terminating);
        assert_eq!(
            l.step(Intent::Stop),
            vec![Effect::Refused {
                to: State::Terminating,
                from: State::Terminating
            }]
        );
    }

    #[test]
    fn with_drain_sigterm_finishes_like_sigquit() {
        let mut l = Lifecycle::new(true);
        assert_eq!(l.step(Intent::Stop), finishing());
        assert_eq!(l.state(), State::Finishing);
        // The same escalation as SIGQUIT's, after process_control_timeout.
        assert_eq!(
            l.step(Intent::EscalationDue),
            vec![Effect::SignalChildren(Sig::Term), Effect::RearmEscalation]
        );
        assert_eq!(l.step(Intent::ChildrenGone), vec![Effect::Exit]);
        // A reload in progress becomes a drain too.
        let mut l = at_with(State::Reloading, true);
        assert_eq!(l.step(Intent::Stop), finishing());
        assert_eq!(l.step(Intent::ChildrenGone), vec![Effect::Exit]);
    }

    #[test]
    fn with_drain_a_second_sigterm_is_refused_and_sigint_cuts_the_drain() {
        let mut l = Lifecycle::new(true);
        l.step(Intent::Stop);
        assert_eq!(
            l.step(Intent::Stop),
            vec![Effect::Refused {
                to: State::Finishing,
                from: State::Finishing
            }]
        );
        assert_eq!(
            l.step(Intent::Terminate),
            vec![
                Effect::Announce("Terminating ..."),
                Effect::NotifySystemd("STOPPING=1"),
                Effect::SignalChildren(Sig::Term),
                Effect::ArmEscalation,
            ]
        );
        assert_eq!(l.state(), State::Terminating);
        // Nothing turns a fast stop into a drain.
        let mut l = at_with(State::Terminating, true);
        assert!(matches!(
            l.step(Intent::Stop).as_slice(),
            [Effect::Refused { .. }]
        ));
        assert_eq!(l.state(), State::Terminating);
    }

    #[test]
    fn drain_changes_nothing_but_sigterm() {
        for from in [
            State::Normal,
            State::Reloading,
            State::Finishing,
            State::Terminating,
        ] {
            for intent in [
                Intent::Terminate,
                Intent::Finish,
                Intent::Reload { announce: true },
                Intent::EscalationDue,
                Intent::ChildrenGone,
            ] {
                let (mut a, mut b) = (at_with(from, false), at_with(from, true));
                assert_eq!(a.step(intent), b.step(intent), "{from:?} {intent:?}");
                assert_eq!(a.state(), b.state());
            }
        }
    }

    #[test]
    fn a_stop_during_reload_signals_again() {
        // USR2 then TERM: the workers get QUIT, then TERM at once, and the timer restarts.
        let mut l = at(State::Reloading);
        let fx = l.step(Intent::Terminate);
        assert!(fx.contains(&Effect::SignalChildren(Sig::Term)));
        assert_eq!(l.step(Intent::ChildrenGone), vec![Effect::Exit]);
    }
}
