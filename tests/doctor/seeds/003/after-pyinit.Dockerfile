# Seed 003's solution with pyinit instead of the wrapper scripts (the README's
# table): the trap's commands become --on, --pre-stop-delay and --stop-command.
FROM ruby:3.2
EXPOSE 5000
STOPSIGNAL SIGTERM
ENTRYPOINT ["pyinit", "--on", "TERM:passenger-status", "--pre-stop-delay", "30", "--stop-command", "passenger stop --port 5000", "--"]
CMD ["bundle", "exec", "passenger", "start", "--port", "5000"]
