# Seed 003 ("502s the Why and How"), reason a: dumb-init as PID 1 passes
# SIGTERM on, and Passenger "considers SIGTERM as a signal which will cause
# the Rails application to exit immediately". Expected: drain-signal.
FROM ruby:3.2
RUN apt-get update && apt-get install -y imagemagick wget dumb-init
EXPOSE 5000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/dumb-init", "--"]
CMD ["bundle", "exec", "passenger", "start", "-p", "5000", "--max-pool-size", "2", "--min-instances", "2"]
