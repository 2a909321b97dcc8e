"""The review app: a worklist of AI results by priority, the study page with the rendered image
and its findings, accept/reject written to FHIR, and an operations page for dead letters.

Server-rendered HTML (Flask, Jinja) with htmx for the interactive bits; deployed as a Cloud
Functions gen2 HTTP function behind IAP (`handlers/main.py: review_app`)."""
