"""Split roles (`podium up --role api|gateway|controller`): how the processes talk over HTTP.

`routebook` is the controller side (versioned routes and tokens for remote gateways, their stats),
`follower` the gateway side (long-polls routes, forwards wake-ups, serves its stats), and
`internal` the small HTTP API between them (`/internal/v0/...`, admin token).
"""
