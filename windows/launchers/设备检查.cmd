@echo off
rem Equipment pre-check: runs every check and opens the printable report in the browser.
title qm-station precheck
"%~dp0python\python.exe" -m station precheck --open-report %*
pause
