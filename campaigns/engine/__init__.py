"""The journey engine: enrolls customers and walks their enrollments through the steps.

Each module imports only the ones below it (and campaigns.models, audiences, notifications):

    tick         claims due enrollments, a fair batch at a time, and walks them
    entry        an event or a stage change: goals, event waits, a customer entering
    enrollments  a segment entering at once; the rules of entry; enrollments moved or ended
    walk         moves enrollments hop by hop through the steps; writes their outcomes
    customers    reads and changes customers for a whole hop at once
    local_time   "the next 10:00 in the customer's time zone"

The engine never imports campaigns.services or campaigns.tasks. What has to follow its work
(a tick right after customers entered, campaigns completed after a tick) is done by its
caller, campaigns.services, from what the engine returns."""
