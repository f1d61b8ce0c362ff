# Seed 003, reason b: Passenger "never received SIGTERM in the first place",
# another process (here the shell of a shell-form CMD) taking PID 1.
# Expected: shell-pid1.
FROM ruby:3.2
EXPOSE 5000
STOPSIGNAL SIGTERM
CMD bundle exec passenger start -p 5000 --max-pool-size 2 --min-instances 2
