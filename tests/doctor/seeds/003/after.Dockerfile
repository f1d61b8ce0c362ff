# Seed 003's whole solution, its two scripts written inline: dumb-init as
# PID 1, a trap that sleeps 30 s on TERM and then stops Passenger gracefully,
# and Passenger under dumb-init --rewrite 15:0 so TERM itself never reaches it.
FROM ruby:3.2
RUN apt-get update && apt-get install -y imagemagick wget dumb-init
EXPOSE 5000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/dumb-init", "--"]
CMD ["/bin/bash", "-c", "trap 'passenger-status; echo SIGTERM received - sleeping 30 seconds; sleep 30; passenger stop --port 5000; exit 0' TERM; /usr/bin/dumb-init --rewrite 15:0 -- bundle exec passenger start --port 5000 & wait"]
