require ["enotify","variables"];
set :encodeurl "s" "a b";
if valid_notify_method "mailto:a@b.org" { notify :importance "1" :options ["a=b"] :from "x@y.org" :message "m ${s}" "mailto:a@b.org?cc=c@d.org&subject=${s}&body=x"; }
if notify_method_capability :matches "mailto:a@b.org" "online" "m*" { discard; }
