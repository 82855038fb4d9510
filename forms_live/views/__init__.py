"""REST for forms built together: forms and members, fields, changes and conflicts,
submissions, their CSV export and analytics.

Bodies are the payloads of ``forms_live.selectors``, as WebSocket events carry them. A builder
change (a form property, a field added, changed, moved or removed, a conflict resolved) answers
what the builders' socket's ack holds: ``{"data", "revision", "outcome", "duplicate"}``, where
``revision`` is the change's (None when nothing changed) and a resubmitted ``client_msg_id``
answers the original with ``duplicate: true`` (200 where a first add is 201).

Every route reads the form through ``form_for_user`` or a service that does: a form the caller
is not a member of answers 404, as one that does not exist; a role too low answers 403. Writes
also count against ``forms_write``.

One module per sub-domain: ``base`` (the shared viewset class, parameters, the change body),
``forms`` (forms and members), ``builder`` (fields, changes, conflicts) and ``submissions``
(submissions, export, analytics).
"""

from forms_live.views.builder import ConflictViewSet, FieldViewSet, FormChangeViewSet
from forms_live.views.forms import FormMemberViewSet, FormViewSet
from forms_live.views.submissions import (
    AnalyticsViewSet,
    SubmissionExportViewSet,
    SubmissionViewSet,
)

__all__ = [
    "AnalyticsViewSet",
    "ConflictViewSet",
    "FieldViewSet",
    "FormChangeViewSet",
    "FormMemberViewSet",
    "FormViewSet",
    "SubmissionExportViewSet",
    "SubmissionViewSet",
]
