FROM ubuntu:24.04
# escape=` here is only a comment: directives count at the very top only.
RUN apt-get update \
# a comment at column 1 inside the instruction
    && apt-get install -y --no-install-recommends \
        # an indented comment
        curl \

        jq \
	# a tab-indented comment, then a blank line with spaces
    
    && echo "a#b is not a comment" \
    && rm -rf /var/lib/apt/lists/*
    # a comment after the instruction, indented
CMD echo done # the shell sees this comment, not the parser
