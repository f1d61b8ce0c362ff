# Seed 003's first fix: dumb-init --rewrite 15:10, so Passenger gets SIGUSR1.
# The seed says it "doesn't address our second point", the race, and the
# doctor agrees: no drain-signal any more, but no-delay remains.
FROM ruby:3.2
RUN apt-get update && apt-get install -y imagemagick wget dumb-init
EXPOSE 5000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/dumb-init", "--rewrite", "15:10", "--"]
CMD ["bundle", "exec", "passenger", "start", "-p", "5000", "--max-pool-size", "2", "--min-instances", "2"]
