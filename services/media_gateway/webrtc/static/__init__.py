"""The softphone page (HTML/JS/CSS, no build step); a package only so that wheels carry these files."""
